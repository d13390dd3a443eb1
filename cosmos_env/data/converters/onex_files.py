"""1X source files: raw little-endian arrays, JSON metadata and mp4 video, read with the
checks that turn a missing, truncated or foreign file into a `OneXFormatError` that names it
(or a `SkipItem` for one bad segment). ``onex.py`` plans and converts with them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cosmos_env.data.converters.common import SkipItem


class OneXFormatError(ValueError):
    """A 1X source file is missing, truncated or not in the documented format."""


def open_bin(
    path: Path, dtype: Any, row_shape: tuple[int, ...], rows: int | None, notes: list[str]
) -> np.ndarray:
    """Read-only memmap (rows, *row_shape) of the raw little-endian array file `path`.

    `rows` None means as many as the file holds. Raises OneXFormatError naming the file and
    the expected and found sizes when it is missing, not a whole number of rows or short;
    extra rows are ignored with a note.
    """
    dtype, rows = np.dtype(dtype).newbyteorder("<"), None if rows is None else int(rows)
    row_bytes = dtype.itemsize * math.prod(row_shape)
    if not path.is_file():
        raise OneXFormatError(f"{path}: missing")
    size = path.stat().st_size
    found, rest = divmod(size, row_bytes)
    layout = f"rows of {dtype.name} {row_shape} ({row_bytes} bytes each)"
    if rest or (rows is not None and found < rows):
        expected = f"{rows * row_bytes} bytes ({rows} {layout})" if rows is not None else layout
        raise OneXFormatError(
            f"{path}: truncated or not this format: expected {expected}, found {size} bytes"
        )
    if rows is not None and found > rows:
        notes.append(f"{path.name} holds {found} rows, {found - rows} more than expected; ignored")
    rows = found if rows is None else rows
    if rows == 0:
        return np.zeros((0, *row_shape), dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(rows, *row_shape))


def open_columns(path: Path, widths: tuple[int, ...], rows: int) -> np.ndarray:
    """float32 (rows, w) memmap for the first width w in `widths` whose size fits exactly."""
    size = path.stat().st_size if path.is_file() else None
    for w in widths:
        if size == rows * w * 4:
            return open_bin(path, np.float32, (w,), rows, [])
    if size is None:
        raise OneXFormatError(f"{path}: missing")
    expected = " or ".join(f"{rows * w * 4} bytes ({rows} rows of float32 ({w},))" for w in widths)
    raise OneXFormatError(
        f"{path}: truncated or not this format: expected {expected}, found {size} bytes"
    )


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise OneXFormatError(f"{path}: not readable JSON: {e}") from e
    if not isinstance(data, dict):
        raise OneXFormatError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def segment_states(states: np.ndarray, a: int, b: int, path: Path) -> np.ndarray:
    """Rows [a, b) of a float32 state-like memmap as an array, or SkipItem on NaN/inf."""
    out = np.array(states[a:b], dtype=np.float32).reshape(b - a, -1)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        raise SkipItem(f"{path}: NaN or inf in rows {(bad[:5] + a).tolist()}")
    return out


def tokens_int32(tokens: np.ndarray, path: Path) -> np.ndarray:
    """Token grids as int32 (values of 1X's tokenizers fit); SkipItem if one does not."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.max() > np.iinfo(np.int32).max or tokens.min() < 0):
        raise SkipItem(f"{path}: token values outside [0, 2^31) (not 1X tokens?)")
    return tokens.astype(np.int32)


def skip(reason: str) -> Callable[[], Any]:
    def load() -> Any:
        raise SkipItem(reason)

    return load


def check_video(path: Path, n: int, seg_path: Path) -> None:
    """Raise OneXFormatError unless OpenCV opens `path` and it claims at least `n` frames."""
    if not path.is_file():
        raise OneXFormatError(f"{path}: missing")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise OneXFormatError(f"{path}: OpenCV cannot open this video")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if 0 < count < n:  # a count of 0 means unknown: the decoder checks as it reads
        raise OneXFormatError(
            f"{path}: truncated: expected {n} frames (the rows of {seg_path.name}), found {count}"
        )


class VideoReader:
    """Decodes frame ranges of one mp4 at a time, forward only: segments come in order, so
    each frame is decoded once and memory holds one segment; going back reopens the file."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.path: Path | None = None
        self.cap: cv2.VideoCapture | None = None
        self.pos = 0

    def read(self, path: Path, start: int, end: int) -> np.ndarray:
        """Frames [start, end) of `path` as uint8 (T, size, size, 3) RGB; SkipItem if short."""
        if path != self.path or start < self.pos:
            self.close()
            self.path, self.cap, self.pos = path, cv2.VideoCapture(str(path)), 0
        out = np.empty((end - start, self.size, self.size, 3), np.uint8)
        while self.pos < end:  # frames before `start` are only grabbed, not converted
            ok = self.cap.grab()
            ok = ok and (self.pos < start or self._retrieve_into(out, self.pos - start))
            if not ok:
                raise SkipItem(
                    f"{path}: the video ends after {self.pos} frames; "
                    f"this segment needs frames [{start}, {end})"
                )
            self.pos += 1
        return out

    def _retrieve_into(self, out: np.ndarray, k: int) -> bool:
        ok, bgr = self.cap.retrieve()
        if ok:
            small = cv2.resize(bgr, (self.size, self.size), interpolation=cv2.INTER_AREA)
            out[k] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        return ok

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
        self.path, self.cap, self.pos = None, None, 0
