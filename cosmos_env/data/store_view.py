"""The read side of an episode store: metadata, episode index and row reads.

`EpisodeStore` (``store.py``) adds creating, appending and finalising; the layout,
integrity and atomicity rules are described there. A view only ever sees committed rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from cosmos_env.data import layout, store_attrs
from cosmos_env.data.chunks import ChunkReader
from cosmos_env.data.episode_index import EpisodeEnds, split_episodes
from cosmos_env.data.layout import COMPLETE
from cosmos_env.data.spec import ActionSpec, FeatureSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.stats import compute_stats, stats_from_json


class StoreView:
    """Committed episodes of one zarr v3 store, read-only (see `EpisodeStore`)."""

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
