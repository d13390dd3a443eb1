"""Tiny deterministic 1X world-model datasets in the three layouts the converter reads (v1.1
tokens + actions, v2.0 Cosmos tokens + states, raw mp4 + states), and broken variants.

Each writer returns what it wrote: the arrays per file and the segments as
``(shard, segment id, start, end)``, so tests compare the store against the source.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

# Segment ids per shard: a run of 3 returns after 7 (a distinct episode, another start row).
V11_SEGMENTS = ((3, 5), (7, 9), (3, 6))
V20_SHARDS = (((10, 8), (11, 9)), ((4, 6), (5, 7), (6, 5)))  # 17 frames: 1 clip; 18: 2 clips
RAW_SHARDS = (((2, 6), (9, 7)), ((1, 5),))
RAW_SIZE = 32


def _segment_ids(segments: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.concatenate([np.full(n, sid, np.int32) for sid, n in segments])


def _bounds(shard: str, segments: tuple[tuple[int, int], ...]) -> list[tuple[str, int, int, int]]:
    ends = np.cumsum([n for _, n in segments])
    return [(shard, sid, int(e - n), int(e)) for (sid, n), e in zip(segments, ends, strict=True)]


def make_states(n: int, seed: int) -> np.ndarray:
    """(n, 25) float32 random walk: joints in rad, hand closures in [0, 1], velocities."""
    rng = np.random.default_rng(seed)
    states = np.cumsum(rng.normal(0.0, 0.05, (n, 25)), axis=0).astype(np.float32)
    states[:, 21:23] = rng.uniform(0, 1, (n, 2))
    states[:, 23:] = rng.uniform(-0.2, 0.2, (n, 2))
    return states


def write_v11(root: Path, neck_columns: int = 1, seed: int = 0) -> dict:
    """A v1.1 directory: video.bin uint32 (N, 4, 4), segment_ids.bin, actions/*.bin."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = _segment_ids(V11_SEGMENTS)
    n, s = len(ids), 4
    tokens = rng.integers(0, 2**18, (n, s, s)).astype(np.uint32)
    states = make_states(n, seed)
    actions = {
        "joint_pos": states[:, :21],
        "driving_command": states[:, 23:],
        "neck_desired": rng.uniform(-0.5, 0.5, (n, neck_columns)).astype(np.float32),
        "l_hand_closure": states[:, 21:22],
        "r_hand_closure": states[:, 22:23],
    }
    tokens.tofile(root / "video.bin")
    ids.tofile(root / "segment_ids.bin")
    (root / "actions").mkdir(exist_ok=True)
    for name, arr in actions.items():
        np.ascontiguousarray(arr).tofile(root / "actions" / f"{name}.bin")
    meta = {"num_images": n, "s": s, "vocab_size": 2**18, "hz": 30, "token_dtype": "uint32"}
    (root / "metadata.json").write_text(json.dumps(meta))
    return {
        "path": root,
        "tokens": tokens,
        "actions": actions,
        "segments": _bounds("v1.1", V11_SEGMENTS),
    }


def _shard_paths(root: Path, i: int, ext: str, nested: bool) -> dict[str, Path]:
    names = {
        "video": ("videos", f"video_{i}.{ext}"),
        "states": ("robot_states", f"states_{i}.bin"),
        "segment_idx": ("segment_indices", f"segment_idx_{i}.bin"),
        "metadata": ("metadata", f"metadata_{i}.json"),
    }
    paths = {k: root / d / f if nested else root / f for k, (d, f) in names.items()}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    return paths


def _write_shard_lowdim(paths: dict[str, Path], segments: tuple, seed: int) -> dict:
    ids = _segment_ids(segments)
    states = make_states(len(ids), seed)
    ids.tofile(paths["segment_idx"])
    states.tofile(paths["states"])
    paths["metadata"].write_text(json.dumps({"shard_num_frames": len(ids)}))
    return {"states": states, "paths": paths}


def write_v20(root: Path, nested: bool = True) -> dict:
    """A v2.0 directory: per shard video_{i}.bin int32 (ceil(n / 17), 3, 32, 32) + states."""
    shards = []
    for i, segments in enumerate(V20_SHARDS):
        paths = _shard_paths(root, i, "bin", nested)
        shard = _write_shard_lowdim(paths, segments, seed=10 + i)
        n = len(shard["states"])
        clips = np.random.default_rng(i).integers(0, 64000, (math.ceil(n / 17), 3, 32, 32))
        shard["clips"] = clips.astype(np.int32)
        shard["clips"].tofile(paths["video"])
        shard["segments"] = _bounds(f"shard{i}", segments)
        shards.append(shard)
    (root / "metadata.json").write_text(json.dumps({"num_shards": len(shards), "hz": 30}))
    return {"path": root, "shards": shards}


def make_frames(n: int, seed: int, size: int = RAW_SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8 smooth moving gradients (video codecs keep them well)."""
    y, x = np.mgrid[0:size, 0:size] / size
    t = np.arange(n)[:, None, None] / max(n, 1)
    r = 0.5 + 0.4 * np.sin(2 * np.pi * (x + t + seed / 7))
    g = 0.5 + 0.4 * np.cos(2 * np.pi * (y - t))
    b = np.broadcast_to(0.3 + 0.4 * x * y, r.shape)
    return (np.stack([r, g, b], axis=-1) * 255).round().astype(np.uint8)


def write_mp4(path: Path, frames: np.ndarray, fps: float = 30.0) -> None:
    """RGB frames (n, H, W, 3) -> an mp4v mp4 at `path`."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def write_raw(root: Path, nested: bool = True) -> dict:
    """A raw-video directory: per shard video_{i}.mp4 (32x32 frames) + states."""
    shards = []
    for i, segments in enumerate(RAW_SHARDS):
        paths = _shard_paths(root, i, "mp4", nested)
        shard = _write_shard_lowdim(paths, segments, seed=20 + i)
        shard["frames"] = make_frames(len(shard["states"]), seed=i)
        write_mp4(paths["video"], shard["frames"])
        shard["segments"] = _bounds(f"shard{i}", segments)
        shards.append(shard)
    (root / "metadata.json").write_text(json.dumps({"num_shards": len(shards), "hz": 30}))
    return {"path": root, "shards": shards}


def truncate(path: Path, drop_bytes: int) -> tuple[int, int]:
    """Cut the last `drop_bytes` bytes off `path`: (size before, size after)."""
    data = path.read_bytes()
    path.write_bytes(data[:-drop_bytes])
    return len(data), len(data) - drop_bytes
