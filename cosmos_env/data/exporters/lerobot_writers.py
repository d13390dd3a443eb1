"""Rolling writers of a LeRobot v3.0 export: frame tables into parquet files and frames
into mp4 files, each moving on to the next file (and chunk directory) at a size limit.

Files are named by LeRobot's templates, ``data/chunk-XXX/file-XXX.parquet`` and
``videos/<key>/chunk-XXX/file-XXX.mp4``; each ``add`` returns the columns of the episodes
table that say where the episode went.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cosmos_env.data.store import EpisodeStore

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
# ffmpeg encoder -> the codec name LeRobot records (what PyAV reports when reading the file)
_CODEC_NAMES = {
    "libx264": "h264",
    "libopenh264": "h264",
    "libx265": "hevc",
    "libsvtav1": "av1",
    "libaom-av1": "av1",
    "librav1e": "av1",
    "libvpx-vp9": "vp9",
}


def fps_value(fps: float) -> int | float:
    """LeRobot records fps as an int; keep a float only when the rate is fractional."""
    return int(fps) if float(fps).is_integer() else float(fps)


@dataclass
class FileCursor:
    """Position (chunk, file) of a rolling output; a chunk holds `chunks_size` files."""

    chunks_size: int
    chunk: int = 0
    file: int = 0

    def advance(self) -> None:
        self.file += 1
        if self.file == self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0


class RollingParquet:
    """Frame tables appended episode by episode into ``data/chunk-XXX/file-XXX.parquet``;
    a new file starts when the next episode would take the current one past the limit
    (uncompressed Arrow bytes, as LeRobot sizes them)."""

    def __init__(self, root: Path, chunks_size: int, limit_mb: float) -> None:
        self.root, self.limit = root, limit_mb * 2**20
        self.cursor = FileCursor(chunks_size)
        self.tables: list[pa.Table] = []  # of the current file, written on `_flush`
        self.nbytes = 0

    def add(self, table: pa.Table) -> dict[str, int]:
        """Append one episode's frame table; return its data/{chunk,file}_index columns."""
        if self.tables and self.nbytes + table.nbytes > self.limit:
            self._flush()
            self.cursor.advance()
        self.tables.append(table)
        self.nbytes += table.nbytes
        return {"data/chunk_index": self.cursor.chunk, "data/file_index": self.cursor.file}

    def close(self) -> None:
        """Write the current file."""
        if self.tables:
            self._flush()

    def _flush(self) -> None:
        c = self.cursor
        path = self.root / DATA_PATH.format(chunk_index=c.chunk, file_index=c.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self.tables), path, compression="snappy")
        self.tables, self.nbytes = [], 0


class RollingVideo:
    """Episodes' frames streamed into ``videos/<key>/chunk-XXX/file-XXX.mp4`` through one
    ffmpeg process per file; a new file starts once the current one holds `limit_mb`.

    Frame k of a file is shown at k / fps seconds. No B-frames and a keyframe every 2
    frames (LeRobot's own setting), so random access by timestamp stays cheap and exact.
    Odd frame sizes are encoded yuv444p (4:2:0 needs even sizes), else yuv420p.
    """

    def __init__(
        self,
        root: Path,
        key: str,
        store: EpisodeStore,
        codec: str,
        crf: int,
        chunks_size: int,
        limit_mb: float,
    ) -> None:
        self.root, self.key, self.fps, self.codec, self.crf = root, key, store.fps, codec, crf
        self.height, self.width, _ = store.features["rgb"].shape
        self.pix_fmt = "yuv420p" if self.height % 2 == 0 and self.width % 2 == 0 else "yuv444p"
        self.cursor = FileCursor(chunks_size)
        self.limit_bytes = limit_mb * 2**20
        self.writer: Any = None
        self.path: Path | None = None
        self.frames_in_file = 0

    def add(self, frames: np.ndarray) -> dict[str, Any]:
        """Append (T, H, W, 3) uint8 frames; return the episode's videos/<key>/... columns."""
        if self.writer is not None and self._bytes_written() >= self.limit_bytes:
            self.close()
            self.cursor.advance()
        if self.writer is None:
            self._open()
        start = self.frames_in_file
        for frame in frames:
            self.writer.send(np.ascontiguousarray(frame))
        self.frames_in_file += len(frames)
        prefix = f"videos/{self.key}/"
        return {
            prefix + "chunk_index": self.cursor.chunk,
            prefix + "file_index": self.cursor.file,
            prefix + "from_timestamp": start / self.fps,
            prefix + "to_timestamp": self.frames_in_file / self.fps,
        }

    def close(self) -> None:
        """Finish the current file (stops its ffmpeg process)."""
        if self.writer is not None:
            self.writer.close()  # waits for ffmpeg to finish the file
            self.writer = None

    def info(self) -> dict[str, Any]:
        """The video feature's ``info`` entry of info.json."""
        return {
            "video.height": self.height,
            "video.width": self.width,
            "video.codec": _CODEC_NAMES.get(self.codec, self.codec),
            "video.pix_fmt": self.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps_value(self.fps),
            "video.channels": 3,
            "has_audio": False,
        }

    def _bytes_written(self) -> int:
        # ffmpeg writes as it goes, so this lags a little behind what it will write
        return self.path.stat().st_size if self.path.exists() else 0

    def _open(self) -> None:
        c = self.cursor
        self.path = self.root / VIDEO_PATH.format(
            video_key=self.key, chunk_index=c.chunk, file_index=c.file
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = imageio_ffmpeg.write_frames(
            str(self.path),
            (self.width, self.height),
            fps=self.fps,
            codec=self.codec,
            pix_fmt_out=self.pix_fmt,
            quality=None,
            macro_block_size=1,  # never rescale: frames must match the store's size
            ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf), "-g", "2", "-bf", "0"],
        )
        self.writer.send(None)  # start ffmpeg
        self.frames_in_file = 0
