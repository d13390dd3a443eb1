"""Zarr v3 episode store: Diffusion Policy's ReplayBuffer layout plus LeRobot-style metadata.

Layout of a store directory::

    zarr.json                 group attrs: format_version, status ("writing" | "complete"),
                              schema (feature specs), action_spec, fps, world, camera, robot,
                              extra (free-form)
    data/<key>                time-first arrays (N, *shape), chunked along time, Blosc-zstd;
                              at least rgb (N, H, W, 3) uint8, state (N, S) float32,
                              action (N, A) float32, reward (N,) float32, is_first/is_last (N,) bool
    meta/episode_ends         (E,) int64, exclusive end row of each episode (cumulative)
    meta/instruction          (E,) str, language instruction per episode
    meta/source_id            (E,) str, where each episode came from (file, seed, ...)
    meta/stats                group whose attrs hold {key: {mean, std, min, max, q01, q99, count}}

Atomicity: one writer at a time. Each file write of zarr's LocalStore is atomic (temp file +
rename). `append_episode` writes the data rows first, then the per-episode strings, and
writes ``meta/episode_ends`` last: that element is the commit point. Readers only see rows up
to the last committed end, so a writer killed at any moment leaves the committed episodes
intact. The ``status`` attr stays "writing" until `finalize` (stats first, then status), so an
interrupted store never reads as complete; ``open(path, "a")`` resumes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle
from zarr.core.sync import sync as zarr_sync

from cosmos_env.data.spec import (
    BOUNDARY_KEYS,
    ActionSpec,
    FeatureSpec,
    check_schema,
    complete_episode,
)
from cosmos_env.data.stats import compute_stats, stats_from_json, stats_to_json

FORMAT_VERSION = 1
_WRITING, _COMPLETE = "writing", "complete"
_META_CHUNK = 4096  # episodes per chunk of the meta arrays
_LOWDIM_CHUNK_BYTES = 64 * 1024  # small features get long time chunks: fewer tiny files
_MAX_TIME_CHUNK = 65536
_MAX_SLACK_ROWS = 4096  # spare rows reserved ahead of appends
_REQUIRED_ATTRS = ("status", "schema", "action_spec", "fps", "world", "camera", "robot", "extra")

PathLike = str | os.PathLike


class StoreError(Exception):
    """A path is not a readable cosmos-env episode store, or a store operation is not allowed."""


class IncompleteStoreError(StoreError):
    """The store's writer did not finish (status "writing")."""


class EpisodeStore:
    """Episodes of robot experience in one zarr v3 store (see the module docstring).

    Build with `create` or `open`, never directly. Rows follow the data contract: ``rgb[t]``,
    ``state[t]``, ``action[t]`` (the action taken after observing ``rgb[t]``); the last row
    of each episode carries a padding action and ``is_last=True``.
    """

    def __init__(self, path: Path, root: zarr.Group, mode: str) -> None:
        self._path, self._root, self._mode = path, root, mode
        attrs = root.attrs.asdict()
        self._features = {k: FeatureSpec.from_dict(v) for k, v in attrs["schema"].items()}
        self._action_spec = ActionSpec.from_dict(attrs["action_spec"])
        self._meta = {name: root[f"meta/{name}"] for name in _META_ARRAYS}
        self._data = {key: root[f"data/{key}"] for key in self._features}
        self._ends = _committed_ends(self._meta, self._data)
        self._stats: dict[str, dict[str, np.ndarray]] | None = None

    # ----------------------------------------------------------------------------- creation
    @classmethod
    def create(
        cls,
        path: PathLike,
        *,
        features: Mapping[str, FeatureSpec],
        action_spec: ActionSpec,
        fps: float,
        world: str,
        camera: dict | None = None,
        robot: str = "",
        attrs: dict | None = None,
        chunk_frames: int = 64,
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Create an empty store (status "writing") at `path`, ready for `append_episode`.

        `features` must hold rgb, state, action, reward (see `standard_features`);
        is_first/is_last are added when absent. Image features (3-d per-frame shape) are
        chunked `chunk_frames` rows at a time; small features get longer time chunks of about
        64 KiB. Refuses an existing path unless ``overwrite=True`` (which only ever deletes an
        existing zarr store or an empty directory).
        """
        path = Path(path)
        features = dict(features)
        for key in BOUNDARY_KEYS:
            features.setdefault(key, FeatureSpec(key, "bool", ()))
        check_schema(features, action_spec)
        if fps <= 0 or chunk_frames < 1:
            raise ValueError(f"need fps > 0 and chunk_frames >= 1, got {fps}, {chunk_frames}")
        group_attrs = {
            "format_version": FORMAT_VERSION,
            "status": _WRITING,
            "schema": {k: s.to_dict() for k, s in features.items()},
            "action_spec": action_spec.to_dict(),
            "fps": float(fps),
            "world": str(world),
            "camera": dict(camera or {}),
            "robot": str(robot),
            "extra": dict(attrs or {}),
        }
        try:
            json.dumps(group_attrs, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"camera/attrs must be JSON-serialisable: {e}") from e
        _clear_path(path, overwrite)
        root = zarr.create_group(str(path), attributes=group_attrs)
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
        return cls(path, root, "a")

    @classmethod
    def open(
        cls,
        path: PathLike,
        mode: Literal["r", "a"] = "r",
        allow_incomplete: bool = False,
    ) -> EpisodeStore:
        """Open an existing store read-only ("r") or to append/resume ("a").

        Raises `StoreError` when `path` is not a cosmos-env store or was written by a newer
        version, and `IncompleteStoreError` for ``mode="r"`` on a store whose writer did not
        finish, unless ``allow_incomplete=True`` (then only committed episodes are visible).
        ``mode="a"`` drops rows written after the last committed episode, so appending resumes
        cleanly; call `finalize` (or use ``with``) to mark the store complete again.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        root = _open_root(path, mode)
        status = root.attrs["status"]
        if status != _COMPLETE and mode == "r" and not allow_incomplete:
            raise IncompleteStoreError(
                f"episode store {path} is incomplete (status {status!r}): its writer did not "
                "finish. Resume writing with EpisodeStore.open(path, 'a') and finalize(), or "
                "read the committed episodes with EpisodeStore.open(path, allow_incomplete=True)"
            )
        try:
            store = cls(path, root, mode)
        except KeyError as e:
            raise StoreError(f"episode store {path} is corrupt: missing array {e}") from e
        if status == _COMPLETE:
            store._check_complete()
        if mode == "a":
            store._fit_to_committed()
        return store

    # ------------------------------------------------------------------------------ writing
    def append_episode(
        self, episode: Mapping[str, np.ndarray], instruction: str = "", source_id: str = ""
    ) -> int:
        """Append one episode and commit it; return its index.

        `episode` maps each schema key to an array (T, *shape) of the schema dtype, T >= 1
        (is_first/is_last may be omitted). Raises ValueError naming the key and the problem.
        """
        self._require_writable("append_episode")
        if not isinstance(instruction, str) or not isinstance(source_id, str):
            raise ValueError("instruction and source_id must be str")
        ep = complete_episode(self._features, episode)
        if self._root.attrs["status"] != _WRITING:
            self._root.attrs["status"] = _WRITING  # a crash from here on must not read complete
        start, k = self.n_frames, self.n_episodes
        end = start + len(ep["is_first"])
        _reserve(self._data.values(), end)
        _reserve(self._meta.values(), k + 1)
        writes = [
            arr.async_array.setitem(slice(start, end), ep[key]) for key, arr in self._data.items()
        ]
        writes += [self._meta["instruction"].async_array.setitem(k, instruction)]
        writes += [self._meta["source_id"].async_array.setitem(k, source_id)]
        _run_concurrently(writes)  # one slice write per array, all in flight together
        self._meta["episode_ends"][k] = end  # commit point: the episode is visible from here on
        self._ends = np.append(self._ends, np.int64(end))
        self._stats = None
        return k

    def finalize(self) -> None:
        """Compute and store normalisation stats, then mark the store complete."""
        self._require_writable("finalize")
        if self.n_episodes == 0:
            raise StoreError(f"cannot finalize {self._path}: no episode was appended")
        self._fit_to_committed()
        stats = compute_stats(self)
        self._root["meta/stats"].attrs.put(stats_to_json(stats))
        self._root.attrs["status"] = _COMPLETE  # only after the stats are on disk
        self._stats = stats

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Finalize on a clean exit only: after an exception the store stays "writing".
        if exc_type is None and self._mode == "a" and not self.is_complete:
            self.finalize()

    # ------------------------------------------------------------------------------ metadata
    @property
    def path(self) -> Path:
        """Directory of the store."""
        return self._path

    @property
    def n_episodes(self) -> int:
        """Number of committed episodes E."""
        return len(self._ends)

    @property
    def n_frames(self) -> int:
        """Number of committed rows N (all episodes)."""
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        """(E,) int64 exclusive end row of each episode (a copy)."""
        return self._ends.copy()

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """Schema: key -> FeatureSpec (per-frame shape, dtype)."""
        return dict(self._features)

    @property
    def action_spec(self) -> ActionSpec:
        """Names, units and physical range of the action dimensions."""
        return self._action_spec

    @property
    def fps(self) -> float:
        """Frames per second of the recordings."""
        return float(self._root.attrs["fps"])

    @property
    def world(self) -> str:
        """Name of the world (sim scene or dataset) the episodes come from."""
        return str(self._root.attrs["world"])

    @property
    def camera(self) -> dict:
        """Camera description (free-form dict)."""
        return dict(self._root.attrs["camera"])

    @property
    def robot(self) -> str:
        """Robot name."""
        return str(self._root.attrs["robot"])

    @property
    def attrs(self) -> dict[str, Any]:
        """All group attrs (format_version, status, schema, ..., extra), as plain JSON data."""
        return json.loads(json.dumps(self._root.attrs.asdict()))

    @property
    def is_complete(self) -> bool:
        """True once `finalize` ran and nothing was appended since."""
        return self._root.attrs["status"] == _COMPLETE

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Normalisation stats per float feature (and per-channel rgb); see `stats.py`.

        Read from the store when complete, else computed from the committed rows.
        """
        if self._stats is None:
            stored = self._root["meta/stats"].attrs.asdict()
            self._stats = stats_from_json(stored) if self.is_complete else self.compute_stats()
        return self._stats

    def compute_stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Compute stats from the committed rows now (not written; `finalize` writes them)."""
        return compute_stats(self)

    def instruction(self, i: int) -> str:
        """Language instruction of episode `i`."""
        return str(self._meta["instruction"][self._episode_index(i)])

    def source_id(self, i: int) -> str:
        """Source id of episode `i` (file name, seed, ...)."""
        return str(self._meta["source_id"][self._episode_index(i)])

    def bytes_stored(self, key: str | None = None) -> int:
        """Bytes on disk of ``data/<key>``, or of the whole store directory when key is None."""
        if key is not None:
            return int(self._data[self._check_keys([key])[0]].nbytes_stored())
        return sum(p.stat().st_size for p in self._path.rglob("*") if p.is_file())

    def raw_bytes(self, key: str | None = None) -> int:
        """Uncompressed bytes of the committed rows of `key` (or of all features)."""
        keys = self._check_keys([key]) if key is not None else list(self._features)
        return self.n_frames * sum(self._features[k].row_bytes for k in keys)

    def __repr__(self) -> str:
        status = "complete" if self.is_complete else "incomplete"
        return (
            f"EpisodeStore({str(self._path)!r}, episodes={self.n_episodes}, "
            f"frames={self.n_frames}, {status}, mode={self._mode!r})"
        )

    # ------------------------------------------------------------------------------ reading
    def episode_bounds(self, i: int) -> tuple[int, int]:
        """(start, end) rows of episode `i` (end exclusive); negative `i` counts from the end."""
        i = self._episode_index(i)
        start = int(self._ends[i - 1]) if i > 0 else 0
        return start, int(self._ends[i])

    def episode_length(self, i: int) -> int:
        """Number of frames T of episode `i`."""
        start, end = self.episode_bounds(i)
        return end - start

    def load_episode(self, i: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All rows of episode `i`: key -> (T, *shape) array of the schema dtype."""
        return self.get_rows(*self.episode_bounds(i), keys=keys)

    def get_window(
        self, episode: int, start: int, length: int, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Rows [start, start + length) of one episode: key -> (length, *shape).

        Only the chunks that overlap the window are read.
        """
        first, end = self.episode_bounds(episode)
        if start < 0 or length < 0 or first + start + length > end:
            raise IndexError(
                f"window start={start} length={length} does not fit in episode {episode} "
                f"of length {end - first}"
            )
        return self.get_rows(first + start, first + start + length, keys)

    def get_rows(
        self, global_start: int, global_end: int, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Committed rows [global_start, global_end) across episodes: key -> (n, *shape)."""
        if not 0 <= global_start <= global_end <= self.n_frames:
            raise IndexError(
                f"rows [{global_start}, {global_end}) out of range [0, {self.n_frames}]"
            )
        return {k: self._data[k][global_start:global_end] for k in self._check_keys(keys)}

    def get_frames(
        self, rows: np.ndarray, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Gather arbitrary committed rows (any order, repeats allowed): key -> (n, *shape).

        Each chunk is decoded once per call however many rows it serves.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_frames):
            raise IndexError(f"rows out of range [0, {self.n_frames})")
        return {k: self._data[k].oindex[rows] for k in self._check_keys(keys)}

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic train/val split by episode: (train, val) sorted int64 index arrays.

        Same number of episodes, fraction and seed give the same split; every episode is on
        exactly one side; with 2+ episodes and ``val_fraction > 0`` val holds at least one.
        """
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        n = self.n_episodes
        n_val = round(n * val_fraction)
        if val_fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        perm = np.random.default_rng(seed).permutation(n)
        return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)

    # ------------------------------------------------------------------------------ helpers
    def _episode_index(self, i: int) -> int:
        n = self.n_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range: the store has {n} episodes")
        return int(i) % n

    def _check_keys(self, keys: Sequence[str] | None) -> list[str]:
        if keys is None:
            return list(self._features)
        if isinstance(keys, str):
            raise TypeError(f"keys must be a sequence of names, got the string {keys!r}")
        unknown = [k for k in keys if k not in self._features]
        if unknown:
            raise KeyError(f"unknown keys {unknown}; the store has {list(self._features)}")
        return list(keys)

    def _require_writable(self, what: str) -> None:
        if self._mode != "a":
            raise StoreError(f"{what}: {self._path} is open read-only; open it with mode='a'")

    def _check_complete(self) -> None:
        lengths = {k: a.shape[0] for k, a in {**self._meta, **self._data}.items()}
        raw = self._meta["episode_ends"].shape[0]
        expected = {k: self.n_episodes if k in self._meta else self.n_frames for k in lengths}
        if self.n_episodes != raw or lengths != expected:
            raise StoreError(
                f"episode store {self._path} is marked complete but its arrays disagree "
                f"(lengths {lengths}, expected {expected}); it is corrupt"
            )

    def _fit_to_committed(self) -> None:
        # Cut arrays to the committed length: drops spare capacity (see `_reserve`) and the
        # rows of an interrupted append.
        for arr in self._data.values():
            if arr.shape[0] != self.n_frames:
                arr.resize((self.n_frames, *arr.shape[1:]))
        for arr in self._meta.values():
            if arr.shape[0] != self.n_episodes:
                arr.resize((self.n_episodes,))
        for leftover in self._path.rglob("*.partial"):  # temp files of a killed zarr write
            leftover.unlink(missing_ok=True)


_META_ARRAYS = ("episode_ends", "instruction", "source_id")


def _committed_ends(meta: Mapping[str, zarr.Array], data: Mapping[str, zarr.Array]) -> np.ndarray:
    """Longest prefix of meta/episode_ends whose episodes are fully written.

    An append killed between resizing episode_ends and writing its element leaves a
    fill value (-1); the prefix must increase strictly and stay within every data array.
    """
    raw = np.asarray(meta["episode_ends"][:], dtype=np.int64)
    k = min([raw.shape[0], meta["instruction"].shape[0], meta["source_id"].shape[0]])
    limit = min((a.shape[0] for a in data.values()), default=np.iinfo(np.int64).max)
    raw = raw[:k]
    ok = (np.diff(raw, prepend=0) > 0) & (raw <= limit)
    k = k if ok.all() else int(np.argmin(ok))
    return raw[:k].copy()


def _run_concurrently(coroutines: list[Coroutine[Any, Any, Any]]) -> None:
    """Await zarr coroutines together in one trip to zarr's event loop: for episode-sized
    writes zarr's per-call overhead, not the codec, dominates."""

    async def gather() -> None:
        await asyncio.gather(*coroutines)

    zarr_sync(gather())


def _reserve(arrays: Iterable[zarr.Array], length: int) -> None:
    """Grow arrays to hold at least `length` rows, with slack: most appends then write data
    without a metadata write (rows past the committed length are invisible to readers).
    The slack is bounded so that trimming it (`_fit_to_committed`) deletes few chunk keys."""
    resizes = []
    for arr in arrays:
        capacity = arr.shape[0]
        if capacity < length:
            new = max(length, min(2 * capacity, capacity + _MAX_SLACK_ROWS))
            resizes.append(arr.async_array.resize((new, *arr.shape[1:])))
    if resizes:
        _run_concurrently(resizes)


def _create_feature_array(data: zarr.Group, spec: FeatureSpec, chunk_frames: int) -> None:
    if len(spec.shape) == 3:
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


def _clear_path(path: Path, overwrite: bool) -> None:
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


def _open_root(path: Path, mode: str) -> zarr.Group:
    """Open the root group and check it is a store this code can read."""
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
    missing = [k for k in _REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise StoreError(f"episode store {path} is corrupt: group attrs lack {missing}")
    return root
