"""Raw videos in: what is known about one (`VideoSource`), and decoding it (`read_video`).
Finding the videos of a source folder and their metadata is `cosmos_env.curate.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi")


class VideoError(ValueError):
    """A video that cannot be curated (unreadable, truncated, empty): skipped with this
    message as its reason."""


@dataclass
class VideoSource:
    """One raw video and what its sidecar says about it."""

    path: Path
    video_id: str  # its path relative to the source folder: unique, stable across runs
    metadata: dict[str, Any] = field(default_factory=dict)

    def instruction_at(self, start: int, end: int) -> str:
        """The instruction of the segment covering most of frames [start, end), else the
        whole video's, else ""."""
        best, overlap = self.metadata.get("instruction", ""), 0
        for seg in self.metadata.get("segments", []):
            shared = min(end, seg["end"]) - max(start, seg["start"])
            if shared > overlap:
                best, overlap = seg.get("instruction", ""), shared
        return best

    def boundaries(self) -> list[int]:
        """Frames where the metadata says a new segment (an episode) starts, after 0."""
        return sorted({seg["start"] for seg in self.metadata.get("segments", [])} - {0})

    def actions(self, start: int, end: int) -> np.ndarray | None:
        """The sidecar's actions of frames [start, end) as float32 (T, A), or None."""
        actions = self.metadata.get("actions")
        if actions is None:
            return None
        return np.asarray(actions, np.float32)[start:end]


def read_video(path: Path) -> tuple[np.ndarray, float]:
    """All frames of ``path`` as uint8 (T, H, W, 3) RGB, and its frame rate.

    Raises VideoError when OpenCV cannot open it, it has no frames, or it ends well before
    the frame count its container states (a truncated file)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError(f"{path}: cannot be opened (corrupt, truncated, or not a video)")
        stated = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise VideoError(f"{path}: no frame could be decoded (corrupt or truncated)")
    if stated > 0 and len(frames) < 0.9 * stated:  # a count of 0 means unknown (webm)
        raise VideoError(f"{path}: truncated: decoded {len(frames)} of {stated} frames")
    return np.stack(frames), fps
