"""The videos of a curate source, each with what is known about it.

A curate source is a folder (searched recursively) of ``.mp4``, ``.webm``, ``.mkv``,
``.mov`` or ``.avi`` files. Beside a video, an optional sidecar ``<name>.json`` tells what is
known about it::

    {"instruction": "push the cube",             # the whole video's, or per segment:
     "segments": [{"start": 0, "end": 40, "instruction": "..."}],   # frame ranges
     "actions": [[...], ...],                     # one action vector per frame (optional)
     "action_names": ["dx", ...], "fps": 10, ...} # anything else is kept as metadata

A LeRobot export (``meta/info.json`` beside ``videos/``) gets its segments and instructions
from its episodes table instead (`cosmos_env.curate.lerobot_source`), and a 1X raw-video set
its segments from its segment index files (`cosmos_env.curate.onex_source`). A segment's
start is a known boundary: the splitter cuts there whether or not the picture changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cosmos_env.curate.lerobot_source import is_lerobot_export, lerobot_sources
from cosmos_env.curate.onex_source import is_onex_raw, onex_sources
from cosmos_env.curate.video import VIDEO_SUFFIXES, VideoSource


def find_videos(src: Path) -> list[VideoSource]:
    """Every video under ``src`` (sorted by path) with its sidecar metadata."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"curate source {src} is not a directory of videos")
    if is_lerobot_export(src):
        return lerobot_sources(src)
    if is_onex_raw(src):
        return onex_sources(src)
    paths = sorted(p for p in src.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    return [VideoSource(p, p.relative_to(src).as_posix(), _sidecar(p)) for p in paths]


def _sidecar(video: Path) -> dict[str, Any]:
    path = video.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"sidecar {path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise ValueError(f"sidecar {path} must hold a JSON object, got {type(meta).__name__}")
    return meta
