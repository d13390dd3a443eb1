"""Chunk-level checks on the reads of an `EpisodeStore` (internal; store.py documents the
layout and layout.py the integrity record).

zarr reads a chunk that has no file as the fill value, and reports a damaged one with the
bare codec error. `ChunkReader` wraps every read of the store's data and meta arrays: in a
store with checksums (every chunk of written rows is stored, see `layout.INTEGRITY`), a
chunk of the rows read that has no file is an error, found with one stat per chunk the
read touches, before zarr reads it; a read that fails is traced to its chunk (file present,
crc32c, decodable). Either way the `CorruptChunkError` names the array, the rows and
episodes the chunk holds, its file, and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import google_crc32c
import numpy as np
import zarr

from cosmos_env.data.layout import ChunkProblem, CorruptChunkError, ProblemKind, is_checksummed

Chunks = Iterable[tuple[zarr.Array, Iterable[int]]]  # (array, chunk indices along time)


def crc_ok(raw: bytes) -> bool:
    """True when `raw` (a chunk file of a crc32c array) ends with the crc32c of the rest."""
    if len(raw) < 4:
        return False
    return google_crc32c.value(raw[:-4]) == int.from_bytes(raw[-4:], "little")


class ChunkReader:
    """Checked reads of one store's arrays. `ends()` gives the committed episode ends (to
    name the episodes of a chunk's rows); `strict` (a store with checksums) makes a chunk
    without a file an error instead of rows of fill values."""

    def __init__(self, path: Path, ends: Callable[[], np.ndarray], strict: bool) -> None:
        self.path, self.strict, self._ends = path, strict, ends

    # ------------------------------------------------------------------------- geometry
    def chunk_file(self, arr: zarr.Array, c: int) -> str:
        """Path of chunk `c` (along time) of `arr`."""
        key = arr.metadata.encode_chunk_key((c,) + (0,) * (arr.ndim - 1))
        return f"{self.path}{os.sep}{arr.path}{os.sep}{key}"

    @staticmethod
    def chunk_rows(arr: zarr.Array, c: int) -> tuple[int, int]:
        """(start, end) rows of chunk `c`, clipped to the array's length."""
        size = arr.chunks[0]
        return c * size, min((c + 1) * size, arr.shape[0])

    @staticmethod
    def chunks_of(arr: zarr.Array, start: int, end: int) -> range:
        """Indices of the chunks that hold rows [start, end)."""
        size = arr.chunks[0]
        return range(start // size, -(-end // size)) if end > start else range(0)

    def episodes_of(self, arr: zarr.Array, rows: tuple[int, int]) -> tuple[int, int]:
        """(first, end) committed episodes that rows [start, end) of `arr` belong to (the
        rows themselves for a meta array: one row per episode)."""
        start, end = rows
        if arr.path.startswith("meta/"):  # one row per episode
            return start, end
        ends = self._ends()
        first = int(np.searchsorted(ends, start, side="right"))
        last = int(np.searchsorted(ends, end - 1, side="right")) if end > start else first - 1
        return first, min(last + 1, len(ends))

    def problem(self, arr: zarr.Array, c: int, kind: ProblemKind, detail: str = "") -> ChunkProblem:
        rows = self.chunk_rows(arr, c)
        return ChunkProblem(
            arr.path, rows, self.episodes_of(arr, rows), self.chunk_file(arr, c), kind, detail
        )

    # --------------------------------------------------------------------------- checks
    def check(self, arr: zarr.Array, c: int, decode: bool = True) -> ChunkProblem | None:
        """The problem of chunk `c` of `arr`, if any: no file (strict stores only), a crc32c
        mismatch, or (with `decode`) a chunk zarr cannot decode."""
        try:
            with open(self.chunk_file(arr, c), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return self.problem(arr, c, "missing") if self.strict else None
        found = self.check_bytes(arr, c, raw)
        if found is not None or not decode:
            return found
        try:
            arr[slice(*self.chunk_rows(arr, c))]
        except Exception as e:  # any codec failure: the chunk's bytes are bad
            return self.problem(arr, c, "corrupt", f"{type(e).__name__}: {e}")
        return None

    def check_bytes(self, arr: zarr.Array, c: int, raw: bytes) -> ChunkProblem | None:
        """The problem of chunk `c` whose file holds `raw`: a crc32c mismatch, if any."""
        if is_checksummed(arr) and not crc_ok(raw):
            return self.problem(arr, c, "checksum", f"altered or truncated file of {len(raw)} B")
        return None

    def require(self, chunks: Chunks) -> None:
        """Raise `CorruptChunkError` for the first listed chunk without a file (strict only)."""
        if not self.strict:
            return
        for arr, indices in chunks:
            for c in indices:
                if not os.path.exists(self.chunk_file(arr, c)):
                    raise CorruptChunkError(self.path, self.problem(arr, c, "missing"))

    @contextmanager
    def guard(self, chunks: Chunks, present: bool = True) -> Iterator[None]:
        """Around a zarr read or write of `chunks`: check their files are there first (unless
        not `present`), and turn a failure into a `CorruptChunkError` naming the first bad
        chunk (the original error is re-raised when every chunk checks out)."""
        chunks = [(arr, list(indices)) for arr, indices in chunks]
        if present:
            self.require(chunks)
        try:
            yield
        except Exception as e:
            for arr, indices in chunks:
                for c in indices:
                    found = self.check(arr, c)
                    if found is not None:
                        raise CorruptChunkError(self.path, found) from e
            raise

    # ---------------------------------------------------------------------------- reads
    def rows(self, arr: zarr.Array, start: int, end: int, present: bool = True) -> np.ndarray:
        """Rows [start, end) of `arr`, checked (chunk files present only if `present`)."""
        with self.guard([(arr, self.chunks_of(arr, start, end))], present):
            return arr[start:end]

    def gather(self, arr: zarr.Array, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` (any order, repeats allowed) of `arr`, checked."""
        chunks = np.unique(rows // arr.chunks[0]).tolist()
        with self.guard([(arr, chunks)]):
            return arr.oindex[rows]

    def tail(self, arr: zarr.Array, length: int) -> list[int]:
        """The chunk an append at row `length` reads back (it holds written rows), if any."""
        return [length // arr.chunks[0]] if length % arr.chunks[0] else []
