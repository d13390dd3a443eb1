"""Low-level zarr v3 layout of an `EpisodeStore` (store.py documents the layout and the
commit protocol): creating and opening the root group, growing and trimming arrays, and
finding the committed prefix of ``meta/episode_ends``. Internal: use `EpisodeStore`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle
from zarr.core.sync import sync as zarr_sync

from cosmos_env.data.spec import FeatureSpec

FORMAT_VERSION = 1
WRITING, COMPLETE = "writing", "complete"
META_ARRAYS = ("episode_ends", "instruction", "source_id")
REQUIRED_ATTRS = ("status", "schema", "action_spec", "fps", "world", "camera", "robot", "extra")
_META_CHUNK = 4096  # episodes per chunk of the meta arrays
_LOWDIM_CHUNK_BYTES = 64 * 1024  # small features get long time chunks: fewer tiny files
_MAX_TIME_CHUNK = 65536
_MAX_SLACK_ROWS = 4096  # spare rows reserved ahead of appends


class StoreError(Exception):
    """A path is not a readable cosmos-env episode store, or a store operation is not allowed."""


class IncompleteStoreError(StoreError):
    """The store's writer did not finish (status "writing")."""


def create_root(
    path: Path, attrs: dict[str, Any], features: Mapping[str, FeatureSpec], chunk_frames: int
) -> zarr.Group:
    """Write an empty store: root group with `attrs`, empty data/meta arrays, meta/stats."""
    root = zarr.create_group(str(path), attributes=attrs)
    data = root.create_group("data")
    for spec in features.values():
        _create_feature_array(data, spec, chunk_frames)
    meta = root.create_group("meta")
    meta.create_array(
        "episode_ends", shape=(0,), chunks=(_META_CHUNK,), dtype="int64", fill_value=-1
    )
    for name in ("instruction", "source_id"):
        meta.create_array(name, shape=(0,), chunks=(_META_CHUNK,), dtype=str)
    meta.create_group("stats")
    return root


def _create_feature_array(data: zarr.Group, spec: FeatureSpec, chunk_frames: int) -> None:
    if len(spec.shape) == 3:  # images: chunk_frames frames per chunk
        time_chunk = chunk_frames
    else:
        time_chunk = min(max(chunk_frames, _LOWDIM_CHUNK_BYTES // spec.row_bytes), _MAX_TIME_CHUNK)
    itemsize = np.dtype(spec.dtype).itemsize
    shuffle = BloscShuffle.shuffle if itemsize > 1 else BloscShuffle.noshuffle
    data.create_array(
        spec.name,
        shape=(0, *spec.shape),
        chunks=(time_chunk, *spec.shape),
        dtype=spec.dtype,
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle=shuffle),
    )


def clear_path(path: Path, overwrite: bool) -> None:
    """Make room for a new store; only ever deletes a zarr store or an empty directory."""
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_dir() and not path.is_symlink():
        if (path / "zarr.json").exists() or not any(path.iterdir()):
            shutil.rmtree(path)
            return
    raise StoreError(
        f"refusing to overwrite {path}: it is not a zarr store (nor an empty directory); "
        "remove it yourself or choose another path"
    )


def open_root(path: Path, mode: str) -> zarr.Group:
    """Open the root group ("r" read-only, else read-write) and check this code can read it."""
    not_store = f"not a cosmos-env episode store: {path}"
    if not path.exists():
        raise StoreError(f"{not_store} does not exist")
    if not path.is_dir():
        raise StoreError(f"{not_store} is a file, not a zarr directory")
    try:
        root = zarr.open_group(str(path), mode="r" if mode == "r" else "r+", zarr_format=3)
    except Exception as e:  # any failure here means "no zarr v3 group at this path"
        raise StoreError(f"{not_store} has no zarr v3 group ({type(e).__name__}: {e})") from e
    attrs = root.attrs.asdict()
    version = attrs.get("format_version")
    if version is None:
        raise StoreError(f"{not_store} is a zarr group without a 'format_version' attr")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"{not_store}: format_version {version!r} is not a positive int")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"episode store {path} was written by a newer cosmos-env (format_version {version}; "
            f"this version reads up to {FORMAT_VERSION}); upgrade cosmos-env to read it"
        )
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise StoreError(f"episode store {path} is corrupt: group attrs lack {missing}")
    return root


def committed_ends(meta: Mapping[str, zarr.Array], data: Mapping[str, zarr.Array]) -> np.ndarray:
    """(E,) int64: the longest prefix of meta/episode_ends whose episodes are fully written.

    Unwritten elements read as the fill value -1 (e.g. an append killed between growing
    episode_ends and writing its element); the prefix must increase strictly, stay within
    every data array, and have its per-episode strings written.
    """
    raw = np.asarray(meta["episode_ends"][:], dtype=np.int64)
    k = min(raw.shape[0], meta["instruction"].shape[0], meta["source_id"].shape[0])
    limit = min((a.shape[0] for a in data.values()), default=np.iinfo(np.int64).max)
    raw = raw[:k]
    ok = (np.diff(raw, prepend=0) > 0) & (raw <= limit)
    k = k if ok.all() else int(np.argmin(ok))
    return raw[:k].copy()


def run_concurrently(coroutines: list[Coroutine[Any, Any, Any]]) -> None:
    """Await zarr coroutines together in one trip to zarr's event loop: for episode-sized
    writes zarr's per-call overhead, not the codec, dominates."""

    async def gather() -> None:
        await asyncio.gather(*coroutines)

    zarr_sync(gather())


def reserve(arrays: Iterable[zarr.Array], length: int) -> None:
    """Grow arrays to hold at least `length` rows, with slack: most appends then write data
    without a metadata write (rows past the committed length are invisible to readers).
    The slack is bounded so that trimming it (`fit`) deletes few chunk keys."""
    resizes = []
    for arr in arrays:
        capacity = arr.shape[0]
        if capacity < length:
            new = max(length, min(2 * capacity, capacity + _MAX_SLACK_ROWS))
            resizes.append(arr.async_array.resize((new, *arr.shape[1:])))
    if resizes:
        run_concurrently(resizes)


def fit(arrays: Iterable[zarr.Array], length: int) -> None:
    """Resize arrays to exactly `length` rows (drops slack and uncommitted rows)."""
    for arr in arrays:
        if arr.shape[0] != length:
            arr.resize((length, *arr.shape[1:]))


def remove_partial_files(path: Path) -> None:
    """Delete zarr's temp files: it writes each file to "*.partial" and renames it, so a
    killed writer can leave some behind."""
    for leftover in path.rglob("*.partial"):
        leftover.unlink(missing_ok=True)
