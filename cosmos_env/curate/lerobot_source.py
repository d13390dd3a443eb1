"""A LeRobot v3.0 dataset (ours from ``export lerobot``, or any other) as curate input.

Its videos hold several episodes back to back; the episodes table says where each starts
and ends (``videos/<key>/from_timestamp``, ``to_timestamp``) and what its task is. Each
episode becomes a segment of its video's metadata, so that curated clips keep their
instructions and the splitter's cuts can be checked against the episode boundaries.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from cosmos_env.curate.video import VideoSource


def is_lerobot_export(src: Path) -> bool:
    """``src`` has LeRobot's ``meta/info.json`` and a ``videos/`` folder."""
    return (src / "meta/info.json").is_file() and (src / "videos").is_dir()


def lerobot_sources(src: Path) -> list[VideoSource]:
    """One VideoSource per video file, its segments taken from the episodes table."""
    info = json.loads((src / "meta/info.json").read_text())
    fps = float(info["fps"])
    template = info["video_path"]  # videos/{video_key}/chunk-{chunk_index:03d}/file-...
    keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    sources: dict[Path, VideoSource] = {}
    for table in sorted((src / "meta/episodes").rglob("*.parquet")):
        for row in pq.read_table(table).to_pylist():
            for key in keys:
                chunk, file = row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]
                path = src / template.format(video_key=key, chunk_index=chunk, file_index=file)
                source = sources.setdefault(
                    path, VideoSource(path, path.relative_to(src).as_posix(), _meta(info))
                )
                start = round(row[f"videos/{key}/from_timestamp"] * fps)
                end = round(row[f"videos/{key}/to_timestamp"] * fps)
                tasks = row.get("tasks") or [""]
                segment = {"start": start, "end": end, "instruction": tasks[0]}
                source.metadata["segments"].append(segment | {"episode": row["episode_index"]})
    return [sources[p] for p in sorted(sources)]


def _meta(info: dict) -> dict:
    return {"fps": info["fps"], "robot": info.get("robot_type", ""), "segments": []}
