"""Annotations of a kept clip: where it came from, how it moves, and a caption.

A captioner is anything with ``caption(frames, annotation) -> str``; curate's config names
one as ``package.module:factory`` (called with no arguments, once per worker), so a
vision-language model can be plugged in without this package knowing it. The default,
`MetadataCaptioner`, writes what is known without looking: the instruction from the
sidecar or the LeRobot task where there is one, else a description from the source and
the motion statistics.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np


class Captioner(Protocol):
    """Writes a one-line description of a clip: uint8 frames (T, H, W, 3) and its annotation."""

    def caption(self, frames: np.ndarray, annotation: dict[str, Any]) -> str: ...


class MetadataCaptioner:
    """The instruction when the source gives one, else "<source>: N frames, <motion>"."""

    def caption(self, frames: np.ndarray, annotation: dict[str, Any]) -> str:
        if annotation.get("instruction"):
            return annotation["instruction"]
        moving = annotation["motion"]
        pace = "fast motion" if moving > 0.08 else "some motion" if moving > 0.02 else "slow motion"
        return f"{annotation['video']}: {len(frames)} frames at {annotation['fps']:g} fps, {pace}"


def load_captioner(spec: str) -> Captioner:
    """``metadata`` (the default) or ``package.module:factory``."""
    if spec == "metadata":
        return MetadataCaptioner()
    module, sep, name = spec.partition(":")
    if not sep:
        raise ValueError(f"captioner must be 'metadata' or 'package.module:factory', got {spec!r}")
    captioner = getattr(importlib.import_module(module), name)()
    if not callable(getattr(captioner, "caption", None)):
        raise TypeError(f"captioner {spec!r} has no caption(frames, annotation) method")
    return captioner


def annotate(
    frames: np.ndarray,
    stats: dict[str, float],
    source: dict[str, Any],
    span: tuple[int, int],
    captioner: Captioner,
) -> dict[str, Any]:
    """The annotation of a clip: source metadata, frame span, stats and caption."""
    height, width = frames.shape[1:3]
    annotation = {**source, "start": span[0], "end": span[1], "height": height, "width": width}
    annotation |= {k: round(v, 5) for k, v in stats.items()}
    annotation["caption"] = captioner.caption(frames, annotation)
    return annotation
