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

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from cosmos_env.data import layout, store_attrs
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
from cosmos_env.data.stats import compute_stats, stats_to_json
from cosmos_env.data.store_view import StoreView
from cosmos_env.data.verify import VerifyReport, verify_store

__all__ = ["FORMAT_VERSION", "EpisodeStore", "IncompleteStoreError", "StoreError"]

PathLike = str | os.PathLike


class EpisodeStore(StoreView):
    """Episodes of robot experience in one zarr v3 store (see the module docstring).

    Build with `create` or `open`, never directly. Metadata and row reads come from
    `StoreView` (``store_view.py``); this class adds creating, appending and finalising.
    Rows follow the data contract: ``rgb[t]``, ``state[t]``, ``action[t]`` (the action
    taken after observing ``rgb[t]``); the last row of each episode carries a padding action
    and ``is_last=True``.
    """

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

    # ------------------------------------------------------------------------------ helpers
    def _require_writable(self, what: str) -> None:
        if self._mode != "a":
            raise StoreError(f"{what}: {self._path} is open read-only; open it with mode='a'")

    def _fit_to_committed(self) -> None:
        # Drop spare capacity (see `layout.reserve`) and the rows of an interrupted append.
        layout.fit(self._data.values(), self.n_frames)
        layout.fit(self._meta.values(), self.n_episodes)
