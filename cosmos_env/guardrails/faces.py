"""The post-guard: faces in frames that leave the system are pixelated.

As Cosmos's post-guard blurs faces in generated video, every frame we write for people or
other tools (demo and report videos and PNGs, LeRobot and Minari exports) passes
`guard_frames` first, unless the caller switches it off explicitly (``guard=False``).
Faces are found by OpenCV's bundled Haar cascade (``haarcascade_frontalface_default``,
in the opencv-python 4.x wheels) and each is replaced, with a margin, by a coarse mosaic
of ``blocks`` x ``blocks`` cells, so that the detector itself no longer finds a face
there. A frame without a face is returned unchanged, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@cache
def _cascade():
    import cv2

    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved it to contrib
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no CascadeClassifier, which the face post-guard "
            "uses: install opencv-python-headless<5 (cosmos-env's pin)"
        )
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the face detector {path}: reinstall opencv-python")
    return cascade


@dataclass(frozen=True)
class FaceGuard:
    """Detector settings and the mosaic: a face is a box the cascade finds at
    ``min_neighbors`` overlapping detections (its acceptance threshold), at least
    ``min_size`` pixels wide; it is pixelated with ``margin`` of its size added around."""

    scale_factor: float = 1.1
    min_neighbors: int = 4
    min_size: int = 20
    blocks: int = 6
    margin: float = 0.2

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Face boxes (K, 4) int as (x, y, width, height) in a uint8 RGB frame (H, W, 3)."""
        import cv2

        if frame.shape[0] < self.min_size or frame.shape[1] < self.min_size:
            return np.zeros((0, 4), dtype=int)
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        boxes = _cascade().detectMultiScale(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        return np.asarray(boxes, dtype=int).reshape(-1, 4)

    def pixelate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """A copy of ``frame`` with each box (and its margin) as a coarse mosaic."""
        import cv2

        out = frame.copy()
        height, width = frame.shape[:2]
        for x, y, w, h in boxes:
            pad_x, pad_y = int(w * self.margin), int(h * self.margin)
            x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
            x1, y1 = min(width, x + w + pad_x), min(height, y + h + pad_y)
            region = out[y0:y1, x0:x1]
            small = cv2.resize(region, (self.blocks, self.blocks), interpolation=cv2.INTER_AREA)
            size = (x1 - x0, y1 - y0)
            out[y0:y1, x0:x1] = cv2.resize(small, size, interpolation=cv2.INTER_NEAREST)
        return out

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames (..., H, W, 3) -> the same, faces pixelated; ``frames`` itself
        (not a copy) when no frame has a face."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-1] != 3:
            raise ValueError(
                f"the face guard takes uint8 RGB frames (..., H, W, 3), got {frames.dtype} "
                f"{frames.shape}"
            )
        flat = frames.reshape(-1, *frames.shape[-3:])
        guarded = None
        for i, frame in enumerate(flat):
            boxes = self.detect(frame)
            if len(boxes):
                guarded = flat.copy() if guarded is None else guarded
                guarded[i] = self.pixelate(frame, boxes)
        return frames if guarded is None else guarded.reshape(frames.shape)


def guard_frames(frames: np.ndarray, guard: bool = True) -> np.ndarray:
    """Frames about to leave the system with every face pixelated (`FaceGuard`); with
    ``guard=False`` (an explicit choice) the frames as they are."""
    return FaceGuard()(frames) if guard else frames
