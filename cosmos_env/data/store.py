"""Zarr v3 episode store: Diffusion Policy's ReplayBuffer layout plus LeRobot-style metadata.

Layout of a store directory::

    zarr.json                 group attrs: format_version, status ("writing" | "complete"),
                              schema (feature specs), action_spec, state_spec (StateSpec),
                              world_description (or null), fps, world, camera, robot,
                              extra (free-form); see store_attrs.py
    data/<key>                time-first arrays (N, *shape), chunked along time, Blosc-zstd;
                              at least rgb (N, H, W, 3) uint8, state (N, S) float32,
                              action (N, A) float32, reward (N,) float32, is_first/is_last (N,) bool
                              (a token store has integer tokens_<name> grids instead of rgb)
    meta/episode_ends         (E,) int64, exclusive end row of each episode (cumulative)
    meta/instruction          (E,) str, language instruction per episode
    meta/source_id            (E,) str, where each episode came from (file, seed, ...)
    meta/stats                group whose attrs hold {key: {mean, std, min, max, q01, q99, count}}

Integrity: every data and meta array ends its codec chain with crc32c, and every chunk a
write touches is stored, even one equal to the fill value (the ``integrity`` attr says so;
`finalize` adds a manifest of the arrays and a digest of the attrs). Reads check that the
chunks they touch have files (one stat each) and trace a failed decode to its chunk: a bad
chunk raises `CorruptChunkError` naming array, rows, episodes and file, never reads as
zeros. `verify` checks every chunk; stores written before checksums read with a warning.

Atomicity: one writer at a time. Each file write of zarr's LocalStore is atomic (temp file +
rename). `append_episode` writes the data rows first, then the per-episode strings, and
writes ``meta/episode_ends`` last: that element is the commit point. Readers only see rows up
to the last committed end, so a writer killed at any moment leaves the committed episodes
intact. The ``status`` attr stays "writing" until `finalize` (stats first, then status), so an
interrupted store never reads as complete; ``open(path, "a")`` resumes it. Arrays are grown
ahead of appends (bounded slack, so most appends write no metadata) and cut to the committed
length by `finalize`: while a store is "writing", array shapes may exceed the committed rows.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import zarr

from cosmos_env.data import layout, store_attrs
from cosmos_env.data.chunks import ChunkReader
from cosmos_env.data.episode_index import EpisodeEnds, split_episodes
from cosmos_env.data.layout import (
    COMPLETE,
    FORMAT_VERSION,
    WRITING,
    IncompleteStoreError,
    NoChecksumWarning,
    StoreError,
)
from cosmos_env.data.spec import (
    BOUNDARY_KEYS,
    ActionSpec,
    FeatureSpec,
    check_schema,
    complete_episode,
)
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.stats import compute_stats, stats_from_json, stats_to_json
from cosmos_env.data.verify import VerifyReport, verify_store

__all__ = ["FORMAT_VERSION", "EpisodeStore", "IncompleteStoreError", "StoreError"]

PathLike = str | os.PathLike


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
        self._state_spec = store_attrs.read_state_spec(attrs, self._features["state"])
        self._world_description = store_attrs.read_world_description(attrs)
        self._meta = {name: layout.open_array(root, f"meta/{name}") for name in layout.META_ARRAYS}
        self._data = {key: layout.open_array(root, f"data/{key}") for key in self._features}
        self._index = EpisodeEnds(np.zeros(0, np.int64))
        self._reader = ChunkReader(path, lambda: self._ends, layout.has_checksums(attrs))
        raw = self._meta["episode_ends"]  # while "writing", slack past the commits has no chunks
        raw = self._reader.rows(raw, 0, raw.shape[0], present=attrs["status"] == COMPLETE)
        ends = layout.committed_ends(raw, self._meta, self._data)
        self._index = EpisodeEnds(ends)
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
        state_spec: StateSpec | None = None,
        world_description: dict | None = None,
    ) -> EpisodeStore:
        """Create an empty store (status "writing") at `path`, ready for `append_episode`.

        `features` must hold rgb, state, action, reward (see `standard_features`), or, for a
        token store, at least one integer ``tokens_*`` feature instead of rgb;
        is_first/is_last are added when absent. `state_spec` (default: a flat one of the
        state's names) must have the state's size; `world_description` is None for a
        store-only world (see `data.world`). Image features (3-d per-frame shape) are chunked
        `chunk_frames` rows at a time; small features get longer time chunks of about 64 KiB.
        Refuses an existing path unless ``overwrite=True`` (which only ever deletes an
        existing zarr store or an empty directory).
        """
        path = Path(path)
        features = dict(features)
        for key in BOUNDARY_KEYS:
            features.setdefault(key, FeatureSpec(key, "bool", ()))
        check_schema(features, action_spec)
        if not fps > 0 or chunk_frames < 1:
            raise ValueError(f"need fps > 0 and chunk_frames >= 1, got {fps}, {chunk_frames}")
        group_attrs = store_attrs.group_attrs(
            features, action_spec, fps, world, camera, robot, attrs, state_spec, world_description
        )
        layout.clear_path(path, overwrite)
        return cls(path, layout.create_root(path, group_attrs, features, chunk_frames), "a")

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
        root = layout.open_root(path, mode)
        status = root.attrs["status"]
        if status != COMPLETE and mode == "r" and not allow_incomplete:
            raise IncompleteStoreError(
                f"episode store {path} is incomplete (status {status!r}): its writer did not "
                "finish. Resume writing with EpisodeStore.open(path, 'a') and finalize(), or "
                "read the committed episodes with EpisodeStore.open(path, allow_incomplete=True)"
            )
        try:
            store = cls(path, root, mode)
        except (KeyError, ValueError, TypeError) as e:
            raise StoreError(f"episode store {path} is corrupt: {type(e).__name__}: {e}") from e
        if not store._reader.strict:
            warnings.warn(layout.no_checksums_message(path), NoChecksumWarning, stacklevel=2)
        if status == COMPLETE:
            layout.check_complete(path, store._meta, store._data, store._ends)
        if mode == "a":
            store._fit_to_committed()
            if status != COMPLETE:
                layout.remove_partial_files(path)
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
        if self._root.attrs["status"] != WRITING:
            self._root.attrs["status"] = WRITING  # a crash from here on must not read complete
        start, k = self.n_frames, self.n_episodes
        end = start + len(ep["is_first"])
        layout.reserve(self._data.values(), end)
        layout.reserve(self._meta.values(), k + 1)
        tails = [(a, self._reader.tail(a, start)) for a in self._data.values()]
        tails += [(a, self._reader.tail(a, k)) for a in self._meta.values()]
        with self._reader.guard(tails):  # writes read back the chunks that hold written rows
            writes = [
                a.async_array.setitem(slice(start, end), ep[key]) for key, a in self._data.items()
            ]
            writes += [self._meta["instruction"].async_array.setitem(k, instruction)]
            writes += [self._meta["source_id"].async_array.setitem(k, source_id)]
            layout.run_concurrently(writes)  # one slice write per array, all in flight together
            self._meta["episode_ends"][k] = end  # commit point: the episode is visible from here
        self._index.push(end)
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
        update: dict[str, Any] = {"status": COMPLETE}  # only after the stats are on disk
        if self._reader.strict:  # one attrs write: the manifest is in place when complete
            manifest = layout.manifest(self._root, self._arrays())
            update["integrity"] = {**layout.INTEGRITY, "manifest": manifest}
        self._root.attrs.update(update)
        self._stats = stats

    def verify(self) -> VerifyReport:
        """Check every chunk of every data and meta array (file, crc32c, decoding) and the
        metadata, up to the committed rows; see `verify.py`."""
        return verify_store(self._root, self._arrays(), self._reader, self._ends, self._features)

    @classmethod
    def migrate(cls, src: PathLike, dst: PathLike, overwrite: bool = False) -> EpisodeStore:
        """Copy the complete store `src` (one without checksums) into a new store with
        checksums at `dst`, after verifying it; return the new store (see `migrate.py`)."""
        from cosmos_env.data.migrate import migrate_store

        migrate_store(Path(src), Path(dst), overwrite)
        return cls.open(dst)

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
        return len(self._index)

    @property
    def n_frames(self) -> int:
        """Number of committed rows N (all episodes)."""
        return self._index.n_frames

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
    def state_spec(self) -> StateSpec:
        """What the state dims are (slots, roles); StoreError for a store without one."""
        if self._state_spec is None:
            raise store_attrs.no_state_spec_error(self._path)
        return self._state_spec

    @property
    def world_description(self) -> dict | None:
        """The world's ``{"entry_point", "kwargs"}`` (`data.world`); None: store-only."""
        return json.loads(json.dumps(self._world_description))

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
        return self._root.attrs["status"] == COMPLETE

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
        i = self._index.index(i)
        return str(self._reader.rows(self._meta["instruction"], i, i + 1)[0])

    def source_id(self, i: int) -> str:
        """Source id of episode `i` (file name, seed, ...)."""
        i = self._index.index(i)
        return str(self._reader.rows(self._meta["source_id"], i, i + 1)[0])

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
        return self._index.bounds(i)

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
        read = self._reader.rows
        return {k: read(self._data[k], global_start, global_end) for k in self._check_keys(keys)}

    def get_frames(
        self, rows: np.ndarray, keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Gather arbitrary committed rows (any order, repeats allowed): key -> (n, *shape).

        Each chunk is decoded once per call however many rows it serves.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_frames):
            raise IndexError(f"rows out of range [0, {self.n_frames})")
        return {k: self._reader.gather(self._data[k], rows) for k in self._check_keys(keys)}

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic train/val split by episode: (train, val) sorted int64 index arrays
        (see `episode_index.split_episodes`)."""
        return split_episodes(self.n_episodes, val_fraction, seed)

    # ------------------------------------------------------------------------------ helpers
    @property
    def _ends(self) -> np.ndarray:
        return self._index.array

    def _arrays(self) -> dict[str, zarr.Array]:
        """Every data and meta array by its path in the store ("data/rgb", ...)."""
        return {a.path: a for a in (*self._data.values(), *self._meta.values())}

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

    def _fit_to_committed(self) -> None:
        # Drop spare capacity (see `layout.reserve`) and the rows of an interrupted append.
        layout.fit(self._data.values(), self.n_frames)
        layout.fit(self._meta.values(), self.n_episodes)
