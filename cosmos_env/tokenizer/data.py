"""Frames and clips for tokenizer training, from one store or a directory of stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmos_env.data.store import EpisodeStore, StoreError


def store_paths(data: str | Path) -> list[Path]:
    """A store path, or a directory whose ``*.zarr`` children are stores."""
    path = Path(data)
    if (path / "zarr.json").exists():
        return [path]
    children = sorted(p for p in path.glob("*.zarr") if (p / "zarr.json").exists())
    if not children:
        raise StoreError(
            f"{path} is neither an episode store nor a directory of stores (*.zarr); "
            "make one with `python -m cosmos_env generate` or datasets/tabletop/prepare.py"
        )
    return children


def load_clips(
    data: str | Path, split: str, clip_frames: int, val_fraction: float = 0.1, seed: int = 0
) -> np.ndarray:
    """All non-overlapping clips of ``clip_frames`` frames from the ``split`` ("train"/"val")
    episodes of every store: uint8 (N, clip_frames, H, W, 3)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    clips: list[np.ndarray] = []
    for path in store_paths(data):
        store = EpisodeStore.open(path)
        train, val = store.split(val_fraction, seed)
        for ep in train if split == "train" else val:
            rgb = store.load_episode(int(ep), keys=["rgb"])["rgb"]
            n = len(rgb) // clip_frames
            if n:
                clips.append(rgb[: n * clip_frames].reshape(n, clip_frames, *rgb.shape[1:]))
    if not clips:
        raise StoreError(f"no {split} clips of {clip_frames} frames in {data}")
    return np.concatenate(clips)
