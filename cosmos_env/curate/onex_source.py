"""A 1X raw-video set (``videos/video_{i}.mp4`` + ``segment_indices/segment_idx_{i}.bin``)
as curate input: each video's runs of one segment id become its segments, and 1X's
``metadata.json`` gives the frame rate. The files are read as `convert onex` reads them."""

from __future__ import annotations

from pathlib import Path

from cosmos_env.curate.video import VideoSource
from cosmos_env.data.converters.onex import DEFAULT_HZ, shard_file, video_indices
from cosmos_env.data.converters.onex_files import OneXFormatError, open_bin, read_json
from cosmos_env.data.converters.onex_spec import find_segments


def is_onex_raw(src: Path) -> bool:
    """``src`` holds 1X's raw videos (``video_{i}.mp4``, flat or under ``videos/``)."""
    return bool(video_indices(src, "mp4"))


def onex_sources(src: Path) -> list[VideoSource]:
    """One VideoSource per ``video_{i}.mp4``, with 1X's segments where they can be read (a
    shard whose segment file is missing or short is curated as plain video)."""
    meta = read_json(src / "metadata.json")
    fps = float(meta.get("hz", DEFAULT_HZ))
    sources = []
    for i in sorted(video_indices(src, "mp4")):
        path = shard_file(src, "videos", f"video_{i}.mp4")
        metadata = {"fps": fps, "robot": "1x-eve", "segments": []}
        notes: list[str] = []
        try:
            ids = open_bin(
                shard_file(src, "segment_indices", f"segment_idx_{i}.bin"), "<i4", (), None, notes
            )
        except OneXFormatError as e:
            metadata["note"] = f"segments unknown: {e}"
        else:
            metadata["segments"] = [
                {"start": a, "end": b, "segment": int(s)} for s, a, b in find_segments(ids)
            ]
        sources.append(VideoSource(path, path.relative_to(src).as_posix(), metadata))
    return sources
