"""`EpisodeStore.verify`: check a whole store, chunk by chunk, and report what is bad.

For every data and meta array, every chunk of the committed rows is checked: its file is
there (a store with checksums stores every chunk it wrote), its crc32c matches (read and
summed here, ahead of zarr), and it decodes (zarr reads the array in blocks of chunks; a
block that fails is re-read chunk by chunk). The metadata is checked too: the schema
against the arrays, the stats of a complete store, and its manifest (the arrays' shapes,
chunks, data types and codecs, and a digest of the attrs, as `finalize` recorded them).

A store without checksums (format 1, written before them) is checked as far as it can be:
decoding, and presence where a chunk cannot equal the fill value (zarr did not store such
chunks): ``meta/episode_ends`` and the is_first/is_last chunks that hold an episode
boundary. Its other absent chunks are listed in the notes, not as problems.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from cosmos_env.data import layout
from cosmos_env.data.chunks import ChunkReader
from cosmos_env.data.layout import COMPLETE, ChunkProblem
from cosmos_env.data.spec import FeatureSpec
from cosmos_env.data.stats import stats_from_json

_BLOCK_BYTES = 64 * 1024 * 1024  # raw bytes zarr decodes per read while verifying


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: `problems` (one per bad chunk or metadata item), how much it
    read (`chunks`, `bytes_checked`: on-disk bytes) in `seconds`, whether the store has
    checksums, and `notes` (things that are not damage, e.g. an incomplete store)."""

    path: str
    problems: list[ChunkProblem]
    chunks: int
    bytes_checked: int
    seconds: float
    checksums: bool
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is bad."""
        return not self.problems

    @property
    def seconds_per_gb(self) -> float:
        return self.seconds / max(self.bytes_checked / 1e9, 1e-12)

    def lines(self) -> list[str]:
        """The clean line, or one line per problem."""
        if self.ok:
            return [
                f"{self.path}: clean ({self.chunks} chunks, {self.bytes_checked / 1e6:.1f} MB "
                f"checked in {self.seconds:.2f} s, {self.seconds_per_gb:.1f} s/GB)"
            ]
        return [f"{self.path}: {p.describe()}" for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "chunks": self.chunks,
            "bytes_checked": self.bytes_checked,
            "seconds": self.seconds,
            "checksums": self.checksums,
            "notes": list(self.notes),
        }


def verify_store(
    root: zarr.Group,
    arrays: Mapping[str, zarr.Array],
    reader: ChunkReader,
    ends: np.ndarray,
    features: Mapping[str, FeatureSpec],
) -> VerifyReport:
    """Check the store of `root` (see the module docstring): `arrays` by path, `ends` the
    committed episode ends, `reader` the store's ChunkReader."""
    start = time.perf_counter()
    status = root.attrs["status"]
    problems, notes = check_metadata(reader, root, arrays, features)
    if not reader.strict:
        notes.insert(0, layout.no_checksums_message(reader.path))
    if status != COMPLETE:
        notes.append(f"incomplete (status {status!r}): checked its {len(ends)} committed episodes")
    n_chunks = n_bytes = 0
    for name, arr in arrays.items():
        n_rows = len(ends) if name.startswith("meta/") else (int(ends[-1]) if len(ends) else 0)
        bad, nbytes, absent = _check_files(reader, arr, n_rows, ends)
        _check_decoding(reader, arr, n_rows, bad)
        problems += [bad[c] for c in sorted(bad)]
        n_chunks += len(reader.chunks_of(arr, 0, n_rows))
        n_bytes += nbytes
        if absent:
            notes.append(
                f"{name}: {len(absent)} chunks have no file (the first holds rows "
                f"{absent[0][0]}-{absent[0][1] - 1}); a store without checksums does not store "
                "chunks equal to the fill value, so their rows are all fill values or were lost"
            )
    seconds = time.perf_counter() - start
    return VerifyReport(
        str(reader.path), problems, n_chunks, n_bytes, seconds, reader.strict, notes
    )


def _check_files(
    reader: ChunkReader, arr: zarr.Array, n_rows: int, ends: np.ndarray
) -> tuple[dict[int, ChunkProblem], int, list[tuple[int, int]]]:
    """Chunk files of rows [0, n_rows): present and (if checksummed) matching their crc32c.
    Returns the bad chunks by index, the bytes read, and the rows of absent chunks that may
    be all fill values (stores without checksums only)."""
    bad, nbytes, absent = {}, 0, []
    for c in reader.chunks_of(arr, 0, n_rows):
        try:
            with open(reader.chunk_file(arr, c), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            rows = reader.chunk_rows(arr, c)
            if reader.strict or _cannot_be_fill(arr.path, rows, ends):
                bad[c] = reader.problem(arr, c, "missing")
            else:
                absent.append(rows)
            continue
        nbytes += len(raw)
        found = reader.check_bytes(arr, c, raw)
        if found is not None:
            bad[c] = found
    return bad, nbytes, absent


def _cannot_be_fill(name: str, rows: tuple[int, int], ends: np.ndarray) -> bool:
    """True when rows [start, end) of array `name` cannot all equal its fill value: any
    episode_ends chunk (fill -1), or an is_first/is_last chunk holding a boundary."""
    if name == "meta/episode_ends":
        return True
    marks = {"data/is_first": np.concatenate([[0], ends[:-1]]), "data/is_last": ends - 1}
    if name not in marks:
        return False
    return bool(((marks[name] >= rows[0]) & (marks[name] < rows[1])).any())


def _check_decoding(
    reader: ChunkReader, arr: zarr.Array, n_rows: int, bad: dict[int, ChunkProblem]
) -> None:
    """Decode rows [0, n_rows) in blocks of whole chunks; add the chunks of a block that
    fails, found one by one, to `bad`."""
    size = arr.chunks[0]
    row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
    step = size * max(1, _BLOCK_BYTES // max(1, size * row_bytes))
    for start in range(0, n_rows, step):
        end = min(start + step, n_rows)
        try:
            arr[start:end]
        except Exception:  # a codec failure somewhere in the block: find the chunk(s)
            for c in reader.chunks_of(arr, start, end):
                found = None if c in bad else reader.check(arr, c)
                if found is not None:
                    bad[c] = found


def check_metadata(
    reader: ChunkReader,
    root: zarr.Group,
    arrays: Mapping[str, zarr.Array],
    features: Mapping[str, FeatureSpec],
) -> tuple[list[ChunkProblem], list[str]]:
    """Problems and notes of the metadata: each schema feature against its array, the crc32c
    codecs a store with checksums promises, and a complete store's stats and manifest."""
    problems: list[ChunkProblem] = []

    def bad(array: str, detail: str) -> None:
        file = reader.path / array / "zarr.json" if array else reader.path / "zarr.json"
        problems.append(ChunkProblem(array or "attrs", None, None, str(file), "metadata", detail))

    for key, spec in features.items():
        arr = arrays[f"data/{key}"]
        if np.dtype(arr.dtype) != np.dtype(spec.dtype) or tuple(arr.shape[1:]) != spec.shape:
            bad(
                arr.path,
                f"rows are {arr.dtype} {arr.shape[1:]}, the schema says {spec.dtype} {spec.shape}",
            )
        elif tuple(arr.chunks[1:]) != spec.shape:
            bad(arr.path, f"chunks {arr.chunks} do not hold whole rows")
    for name, arr in arrays.items():
        if reader.strict and not layout.is_checksummed(arr):
            bad(name, "no crc32c codec, though the store records checksums")
    notes: list[str] = []
    if root.attrs["status"] == COMPLETE:
        stats_attrs = root["meta/stats"].attrs.asdict()
        try:
            stats = stats_from_json(stats_attrs)
        except Exception as e:  # any parse failure: the stats are unusable
            stats = {}
            bad("meta/stats", f"stats unreadable ({type(e).__name__}: {e})")
        missing = [k for k, s in features.items() if s.dtype.startswith("float") and k not in stats]
        if stats and missing:
            bad("meta/stats", f"no stats for {missing}")
        if reader.strict:
            _check_manifest(root.attrs.asdict(), stats_attrs, arrays, bad, notes)
    return problems, notes


def _check_manifest(
    attrs: dict,
    stats_attrs: dict,
    arrays: Mapping[str, zarr.Array],
    bad: Callable[[str, str], None],
    notes: list[str],
) -> None:
    """The arrays' summaries and the attrs digest against the manifest finalize recorded."""
    manifest = attrs.get("integrity", {}).get("manifest")
    if manifest is None:
        notes.append("complete but without a manifest (finalized by an older cosmos-env?)")
        return
    recorded = manifest.get("arrays", {})
    for name, arr in arrays.items():
        want, got = recorded.get(name), layout.array_summary(arr)
        if want is None:
            bad(name, "not in the manifest finalize recorded")
            continue
        for item in got:
            if got[item] != want.get(item):
                bad(name, f"{item} is {got[item]}, finalize recorded {want.get(item)}")
    if layout.attrs_digest(attrs, stats_attrs) != manifest.get("attrs_sha256"):
        bad("", "group or meta/stats attrs changed since finalize: digest mismatch")
