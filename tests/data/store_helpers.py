"""Small deterministic episodes and stores for the data tests (a uniquely named module:
``import conftest`` is ambiguous when several test folders have one).

The crash test's writer subprocess also loads this file by path, so the helpers are plain
functions and the child regenerates exactly the same episodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from cosmos_env.data import ActionSpec, EpisodeStore, FeatureSpec, standard_features

H, W, S, A = 8, 8, 4, 3
LENGTHS = (5, 17, 1, 40, 9)  # spans several rgb chunks (chunk_frames=8), includes length 1


def make_action_spec() -> ActionSpec:
    return ActionSpec(
        names=("dx", "dy", "gripper"),
        units=("m", "m", "1"),
        low=(-0.05, -0.1, 0.0),
        high=(0.05, 0.1, 1.0),
    )


def make_features() -> dict[str, FeatureSpec]:
    """The standard schema plus two int64 bookkeeping keys used to check windows."""
    features = standard_features(H, W, S, A, state_names=("x", "y", "z", "g"))
    features["episode_id"] = FeatureSpec("episode_id", "int64", ())
    features["frame_index"] = FeatureSpec("frame_index", "int64", ())
    return features


def make_episode(i: int, length: int) -> dict[str, np.ndarray]:
    """Episode `i` of `length` frames; the same (i, length) always gives the same arrays."""
    rng = np.random.default_rng(i)
    is_first, is_last = np.zeros(length, bool), np.zeros(length, bool)
    is_first[0], is_last[-1] = True, True
    return {
        "rgb": (rng.integers(0, 4, (length, H, W, 3)) * 60).astype(np.uint8),  # compressible
        "state": rng.standard_normal((length, S)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, A)).astype(np.float32),
        "reward": rng.standard_normal(length).astype(np.float32),
        "is_first": is_first,
        "is_last": is_last,
        "episode_id": np.full(length, i, np.int64),
        "frame_index": np.arange(length, dtype=np.int64),
    }


def writer_length(i: int) -> int:
    """Episode lengths used by the crash test's writer loop."""
    return 20 + (i * 7) % 23


def create_store(path: Path | str, **kwargs) -> EpisodeStore:
    return EpisodeStore.create(
        path,
        features=make_features(),
        action_spec=make_action_spec(),
        fps=10.0,
        world="test-world",
        camera={"name": "front", "fovy": 45.0},
        robot="panda",
        attrs={"note": "unit test"},
        chunk_frames=8,
        **kwargs,
    )


def fill_store(path: Path | str, lengths: tuple[int, ...] = LENGTHS) -> list[dict[str, np.ndarray]]:
    """Create a finalized store at `path` holding `lengths` episodes; return the episodes."""
    episodes = [make_episode(i, n) for i, n in enumerate(lengths)]
    with create_store(path) as store:
        for i, ep in enumerate(episodes):
            store.append_episode(ep, instruction=f"task {i} ✓", source_id=f"src-{i}")
    return episodes


def strip_checksums(path: Path | str) -> None:
    """Rewrite the store at `path` the way cosmos-env wrote stores before checksums: no crc32c
    codec, no ``integrity`` attr, and chunks equal to the fill value not stored (zarr's
    default). Same shapes, chunks, data types and other codecs."""
    root = zarr.open_group(str(path), mode="r+")
    for group in ("data", "meta"):
        for name, arr in list(root[group].arrays()):
            values = arr[:]
            new = root[group].create_array(
                name,
                shape=arr.shape,
                chunks=arr.chunks,
                dtype=arr.metadata.data_type,
                fill_value=arr.fill_value,
                serializer=arr.serializer,
                compressors=[c for c in arr.compressors if not isinstance(c, Crc32cCodec)],
                overwrite=True,
            )
            new[:] = values
    attrs = root.attrs.asdict()
    del attrs["integrity"]
    root.attrs.put(attrs)
