"""Low-level zarr v3 layout of an `EpisodeStore` (store.py documents the layout and the
commit protocol): creating and opening the root group, growing and trimming arrays,
finding the committed prefix of ``meta/episode_ends``, and the integrity record (checksum
codec, empty chunks written, the manifest `finalize` writes). Internal: use `EpisodeStore`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec, ZstdCodec
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
# The ``integrity`` group attr of a store written with checksums: every data and meta array
# ends its codec chain with crc32c, and every chunk a write touches is stored, even one equal
# to the fill value (zarr skips those by default), so a chunk covering written rows that has
# no file was lost. `finalize` adds a ``manifest`` (see `manifest`). Stores without this attr
# (format 1 before checksums) are read with a warning.
INTEGRITY = {"checksum": "crc32c", "empty_chunks": "written"}
# zarr's runtime config of every array: not stored in the array's metadata, so every open
# sets it again (`open_array`)
ARRAY_CONFIG = {"write_empty_chunks": True}
_DIGESTED_ATTRS = (
    "format_version",
    "schema",
    "action_spec",
    "fps",
    "world",
    "camera",
    "robot",
    "extra",
)
# Digested only when present, so that stores finalized before these attrs keep their digest.
_DIGESTED_IF_PRESENT = ("state_spec", "world_description")
ProblemKind = Literal["missing", "corrupt", "checksum", "metadata"]
FIX_HINT = (
    "The store is damaged: re-generate or re-convert it (or restore it from a copy); "
    "`python -m cosmos_env verify {path}` lists every bad chunk"
)


class StoreError(Exception):
    """A path is not a readable cosmos-env episode store, or a store operation is not allowed."""


class IncompleteStoreError(StoreError):
    """The store's writer did not finish (status "writing")."""


class NoChecksumWarning(UserWarning):
    """The store was written before cosmos-env checksummed its chunks."""


@dataclass(frozen=True)
class ChunkProblem:
    """One bad chunk (or bad metadata) of a store. `rows` (start, end) and `episodes`
    (first, end) are half-open ranges of what the chunk holds (None for metadata); `file`
    is the chunk's file (or the zarr.json at fault)."""

    array: str  # e.g. "data/rgb", "meta/episode_ends"
    rows: tuple[int, int] | None
    episodes: tuple[int, int] | None
    file: str
    kind: ProblemKind
    detail: str = ""

    def describe(self) -> str:
        """One line: array, what is wrong, rows and episodes, file."""
        what = {
            "missing": "chunk file missing",
            "checksum": "chunk fails its crc32c checksum",
            "corrupt": "chunk cannot be decoded",
            "metadata": "bad metadata",
        }[self.kind]
        if self.detail:
            what += f" ({self.detail})"
        where = []
        if self.rows is not None:
            where.append(_span("rows", "row", self.rows))
        if self.episodes is not None:
            where.append(_span("episodes", "episode", self.episodes))
        held = f" [{', '.join(where)}]" if where else ""
        return f"{self.array}: {what}{held}: {self.file}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "array": self.array,
            "rows": list(self.rows) if self.rows is not None else None,
            "episodes": list(self.episodes) if self.episodes is not None else None,
            "file": self.file,
            "kind": self.kind,
            "detail": self.detail,
        }


def _span(plural: str, singular: str, span: tuple[int, int]) -> str:
    start, end = span
    if end <= start:
        return f"no committed {plural}"
    return f"{singular} {start}" if end - start == 1 else f"{plural} {start}-{end - 1}"


class CorruptChunkError(StoreError):
    """A read met a missing, truncated, altered or undecodable chunk (see `problem`)."""

    def __init__(self, store: Path, problem: ChunkProblem) -> None:
        self.store, self.problem = store, problem
        super().__init__(
            f"episode store {store}: {problem.describe()}. {FIX_HINT.format(path=store)}"
        )


def create_root(
    path: Path, attrs: dict[str, Any], features: Mapping[str, FeatureSpec], chunk_frames: int
) -> zarr.Group:
    """Write an empty store: root group with `attrs`, empty data/meta arrays, meta/stats."""
    root = zarr.create_group(str(path), attributes=attrs)
    data = root.create_group("data")
    for spec in features.values():
        _create_feature_array(data, spec, chunk_frames)
    meta = root.create_group("meta")
    checked = {"compressors": (ZstdCodec(level=0), Crc32cCodec()), "config": ARRAY_CONFIG}
    meta.create_array(
        "episode_ends", shape=(0,), chunks=(_META_CHUNK,), dtype="int64", fill_value=-1, **checked
    )
    for name in ("instruction", "source_id"):
        meta.create_array(name, shape=(0,), chunks=(_META_CHUNK,), dtype=str, **checked)
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
        compressors=(BloscCodec(cname="zstd", clevel=3, shuffle=shuffle), Crc32cCodec()),
        config=ARRAY_CONFIG,
    )


def no_checksums_message(path: Path) -> str:
    """The warning for a store written without `INTEGRITY`, with the way out."""
    return (
        f"episode store {path} has no checksums (written before cosmos-env checked its chunks): "
        "a lost chunk reads as zeros and a damaged one may go unnoticed. Copy it into a store "
        f"with checksums: `python -m cosmos_env migrate {path} NEW_PATH` (EpisodeStore.migrate), "
        "or re-generate it"
    )


def has_checksums(attrs: Mapping[str, Any]) -> bool:
    """True for a store written with `INTEGRITY` (crc32c chunks, empty chunks stored)."""
    integrity = attrs.get("integrity")
    return isinstance(integrity, dict) and all(integrity.get(k) == v for k, v in INTEGRITY.items())


def is_checksummed(arr: zarr.Array) -> bool:
    """True when the array's codec chain checks a crc32c per chunk."""
    return any(isinstance(codec, Crc32cCodec) for codec in arr.metadata.codecs)


def open_array(root: zarr.Group, name: str) -> zarr.Array:
    """``root[name]`` as an array with `ARRAY_CONFIG`; KeyError if it is not an array."""
    arr = root[name]
    if not isinstance(arr, zarr.Array):
        raise KeyError(f"{name} is not an array")
    return arr.with_config(ARRAY_CONFIG)


def array_summary(arr: zarr.Array) -> dict[str, Any]:
    """What the manifest records of an array: shape, chunk shape, data type, codec names."""
    md = json.loads(json.dumps(arr.metadata.to_dict(), default=str))
    return {
        "shape": md["shape"],
        "chunks": md["chunk_grid"]["configuration"]["chunk_shape"],
        "data_type": md["data_type"],
        "codecs": [codec["name"] for codec in md["codecs"]],
    }


def attrs_digest(attrs: Mapping[str, Any], stats_attrs: Mapping[str, Any]) -> str:
    """sha256 of the attrs the store owns (schema, specs, ..., extra) and of meta/stats."""
    owned = {k: attrs.get(k) for k in _DIGESTED_ATTRS}
    owned.update({k: attrs[k] for k in _DIGESTED_IF_PRESENT if k in attrs})
    text = json.dumps([owned, dict(stats_attrs)], sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(root: zarr.Group, arrays: Mapping[str, zarr.Array]) -> dict[str, Any]:
    """The ``integrity.manifest`` `finalize` records: each array's summary (its chunk grid
    follows from shape and chunks: every chunk of it must exist) and the attrs digest."""
    return {
        "arrays": {name: array_summary(arr) for name, arr in arrays.items()},
        "attrs_sha256": attrs_digest(root.attrs.asdict(), root["meta/stats"].attrs.asdict()),
    }


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


def check_complete(
    path: Path, meta: Mapping[str, zarr.Array], data: Mapping[str, zarr.Array], ends: np.ndarray
) -> None:
    """StoreError unless a complete store's arrays hold exactly its committed episodes
    (`ends`) and their rows (`fit` cut them so at finalize)."""
    n_episodes, n_frames = len(ends), int(ends[-1]) if len(ends) else 0
    lengths = {k: a.shape[0] for k, a in {**meta, **data}.items()}
    expected = {k: n_episodes if k in meta else n_frames for k in lengths}
    if n_episodes != meta["episode_ends"].shape[0] or lengths != expected:
        raise StoreError(
            f"episode store {path} is marked complete but its arrays disagree "
            f"(lengths {lengths}, expected {expected}); it is corrupt"
        )


def committed_ends(
    raw: np.ndarray, meta: Mapping[str, zarr.Array], data: Mapping[str, zarr.Array]
) -> np.ndarray:
    """(E,) int64: the longest prefix of `raw` (all of meta/episode_ends) whose episodes are
    fully written.

    Unwritten elements read as the fill value -1 (e.g. an append killed between growing
    episode_ends and writing its element); the prefix must increase strictly, stay within
    every data array, and have its per-episode strings written.
    """
    raw = np.asarray(raw, dtype=np.int64)
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
