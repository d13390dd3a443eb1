"""Writing what people would rather look at than read: videos, contact sheets, tables."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np

from cosmos_env.guardrails.faces import guard_frames


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 frames (..., H, W, 3) by ``factor``."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def write_video(path: Path, frames: np.ndarray, fps: float, guard: bool = True) -> Path:
    """Write uint8 frames (T, H, W, 3) as H.264 MP4 (GIF if the path says so), faces
    pixelated (`guardrails.faces`) unless ``guard=False``."""
    frames = guard_frames(frames, guard)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1000 / fps, loop=0)
    else:
        # macro_block_size=1 keeps odd sizes; yuv420p plays everywhere.
        imageio.mimsave(path, list(frames), fps=fps, macro_block_size=1, pixelformat="yuv420p")
    return path


def contact_sheet(rows: list[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """A grid image: one row per episode (T, H, W, 3), ``columns`` frames evenly spaced in time."""
    tiles = []
    for frames in rows:
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        row = [
            np.pad(frames[i], ((gap, gap), (gap, gap), (0, 0)), constant_values=255) for i in picks
        ]
        tiles.append(np.concatenate(row, axis=1))
    return np.concatenate(tiles, axis=0)


def write_png(path: Path, image: np.ndarray, guard: bool = True) -> Path:
    """Write a uint8 RGB image (H, W, 3) as PNG, faces pixelated unless ``guard=False``."""
    image = guard_frames(image, guard)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"could not write {path}")
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table; floats get 3 significant decimals."""

    def cell(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
