"""`EpisodeStore.migrate` (``python -m cosmos_env migrate SRC DST``): copy a store written
without checksums into a new one with them.

Each data and meta array is copied with the same shape, chunks, data type, fill value and
compression, plus crc32c as its last codec, every chunk stored; the attrs and the other
children of the store (e.g. ``cache/``) are copied as they are, and `finalize` then writes
the stats and the manifest. The source is verified first and refused if anything is bad: a
chunk it lost cannot be told from a chunk of fill values, so what verify could not check
(listed in its notes) is copied as it reads.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import zarr
from zarr.codecs import Crc32cCodec

from cosmos_env.data import layout
from cosmos_env.data.layout import WRITING, NoChecksumWarning, StoreError
from cosmos_env.data.store import EpisodeStore

_BLOCK_BYTES = 64 * 1024 * 1024  # raw bytes copied per read


def migrate_store(src: Path, dst: Path, overwrite: bool = False) -> dict:
    """Copy the complete store `src` into a new store with checksums at `dst`; return a
    summary. Raises StoreError when `src` fails verification or `dst` is `src`."""
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise StoreError(f"migrate writes a new store: choose a DST other than {src}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoChecksumWarning)
        old = EpisodeStore.open(src)
    report = old.verify()
    if not report.ok:
        raise StoreError(
            f"cannot migrate {src}: verify found {len(report.problems)} problems, the first: "
            f"{report.problems[0].describe()}. Re-generate or re-convert the store instead"
        )
    layout.clear_path(dst, overwrite)
    source = zarr.open_group(str(src), mode="r", zarr_format=3)
    attrs = {**old.attrs, "status": WRITING, "integrity": dict(layout.INTEGRITY)}
    root = zarr.create_group(str(dst), attributes=attrs)
    root.create_group("data")
    root.create_group("meta").create_group("stats", attributes=source["meta/stats"].attrs.asdict())
    names = [f"data/{k}" for k in old.features] + [f"meta/{n}" for n in layout.META_ARRAYS]
    for name in names:
        _copy_array(source[name], root, name)
    for child in src.iterdir():  # e.g. cache/: copied as it is
        if child.name not in ("zarr.json", "data", "meta"):
            copy = shutil.copytree if child.is_dir() else shutil.copy2
            copy(child, dst / child.name)
    with EpisodeStore.open(dst, "a") as new:
        new.finalize()  # stats (the same numbers) and the manifest; status complete
    return {
        "src": str(src),
        "dst": str(dst),
        "episodes": new.n_episodes,
        "frames": new.n_frames,
        "notes": report.notes[1:],  # after the no-checksums line
    }


def _copy_array(arr: zarr.Array, root: zarr.Group, name: str) -> None:
    """Copy `arr` to `root[name]` with crc32c appended to its codecs, whole chunks at a time."""
    compressors = [c for c in arr.compressors if not isinstance(c, Crc32cCodec)]
    new = root.create_array(
        name,
        shape=arr.shape,
        chunks=arr.chunks,
        dtype=arr.metadata.data_type,
        fill_value=arr.fill_value,
        serializer=arr.serializer,
        compressors=(*compressors, Crc32cCodec()),
        config=layout.ARRAY_CONFIG,
    )
    size = arr.chunks[0]
    row_bytes = arr.dtype.itemsize * max(1, arr.size // max(1, arr.shape[0]))
    step = size * max(1, _BLOCK_BYTES // max(1, size * row_bytes))
    for start in range(0, arr.shape[0], step):
        new[start : start + step] = arr[start : start + step]
