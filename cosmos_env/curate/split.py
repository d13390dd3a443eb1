"""Split a video into shots at its cuts, and shots into clips of a bounded length.

The cut detector is PySceneDetect's adaptive content detector, re-done on arrays: a frame's
content score is the mean absolute change of hue, saturation and value from the frame
before (0-255); a cut is a frame whose score is at least ``min_score`` and at least
``ratio`` times the mean score of the ``window`` frames on each side. Comparing with the
neighbours, not a fixed threshold, keeps a fast arm motion from reading as a cut while a
cut between two similar scenes still stands out against the quiet frames around it.
``tests/curate/test_split.py`` checks it against PySceneDetect's own detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SplitConfig:
    """Cut detection and clip length, in frames."""

    min_score: float = 8.0  # content score (0-255) below which no frame is a cut
    ratio: float = 3.0  # a cut's score over the mean score of its neighbours
    window: int = 2  # neighbours on each side
    min_frames: int = 8  # shorter shots are dropped ("too short")
    max_frames: int = 64  # longer shots are cut into even clips no longer than this


def content_scores(frames: np.ndarray) -> np.ndarray:
    """Mean absolute HSV change of each frame from the one before: uint8 (T, H, W, 3) RGB
    -> float64 (T,), 0 for the first frame."""
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames]).astype(np.int16)
    scores = np.zeros(len(frames))
    if len(frames) > 1:
        scores[1:] = np.abs(np.diff(hsv, axis=0)).mean(axis=(1, 2, 3))
    return scores


def detect_cuts(frames: np.ndarray, cfg: SplitConfig) -> list[int]:
    """Frame indices where a new shot starts (the first frame is not listed)."""
    scores = content_scores(frames)
    cuts = []
    for t in range(1, len(frames)):
        lo, hi = max(1, t - cfg.window), min(len(frames), t + cfg.window + 1)
        around = np.concatenate([scores[lo:t], scores[t + 1 : hi]])
        base = around.mean() if len(around) else 0.0
        if scores[t] >= cfg.min_score and scores[t] >= cfg.ratio * base:
            cuts.append(t)
    return cuts


def shots(n_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """The [start, end) frame ranges between the cuts of an ``n_frames`` video."""
    bounds = [0, *cuts, n_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def clips_of_shot(start: int, end: int, cfg: SplitConfig) -> list[tuple[int, int]]:
    """A shot cut into the fewest even clips no longer than ``max_frames``."""
    pieces = -(-(end - start) // cfg.max_frames)
    edges = np.linspace(start, end, pieces + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
