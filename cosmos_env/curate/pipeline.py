"""``python -m cosmos_env curate SRC DST [executor=local|ray]``: raw videos in, shards out.

The stages, in order (each a plain function of its own module):

1. per video, on the executor's workers (`clips.curate_video`): decode (`video`), split
   at cuts into clips (`split`), filter (`filters`), annotate and embed the kept clips
   (`annotate`, `dedup.embed_clip`); each video's results land in ``DST/.work/``;
2. across videos, in this process: deduplicate (`dedup.find_duplicates`), then write the
   remaining clips into zarr shards by resolution and length (`shard`), faces pixelated;
3. the report (`report`): counts in and out per stage with reasons, example frames of kept
   and dropped clips, throughput.

Resumable: a re-run skips the videos whose work files exist and the shards already
written; the report is written last, so a DST without ``report.json`` is unfinished. The
stage functions are the same under both executors, and the results are gathered in the
videos' order, so local and Ray runs write identical shards.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmos_env.curate.clips import (
    curate_video,
    init_worker,
    load_arrays,
    load_record,
    work_file,
)
from cosmos_env.curate.config import CurateConfig
from cosmos_env.curate.dedup import find_duplicates
from cosmos_env.curate.report import write_report
from cosmos_env.curate.shard import shard_name, write_shard
from cosmos_env.curate.sources import find_videos
from cosmos_env.executors import make_executor
from cosmos_env.guardrails.faces import guard_frames
from cosmos_env.machine import default_workers

SETTINGS_FILE = "settings.json"


def curate(cfg: CurateConfig) -> dict[str, Any]:
    """Curate ``cfg.src`` into ``cfg.dst``; return the report's summary."""
    dst = Path(cfg.dst)
    work = dst / ".work"
    sources = find_videos(Path(cfg.src))
    if not sources:
        raise FileNotFoundError(f"no videos (mp4, webm, mkv, mov, avi) under {cfg.src}")
    _check_settings(work, cfg)
    todo = [s for s in sources if not work_file(work, s.video_id).exists()]
    start = time.perf_counter()
    if todo:
        workers = cfg.workers or default_workers(len(todo))
        executor = make_executor(cfg.executor, workers)
        jobs = [(s, str(work)) for s in todo]
        results = executor.map(curate_video, jobs, init_worker, (cfg,))
        for _ in tqdm(results, total=len(todo), desc="curate", unit="video"):
            pass
    seconds = time.perf_counter() - start
    videos = [_load(work, s.video_id) for s in sources]
    clips = _dedup(videos, work, cfg)
    shards = _write_shards(clips, work, dst, cfg)
    return write_report(dst, cfg, videos, shards, len(todo), seconds)


def _check_settings(work: Path, cfg: CurateConfig) -> None:
    """A DST is resumed only with the settings that began it (the executor may change,
    and the DST may have moved)."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("dst", "executor", "workers")}
    path = work / SETTINGS_FILE
    if path.exists():
        before = json.loads(path.read_text())
        if before != settings:
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            raise ValueError(
                f"{cfg.dst} was curated with other settings (changed: {', '.join(changed)}); "
                "curate into a new DST, or delete it to start over"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1))


def _load(work: Path, video_id: str) -> dict[str, Any]:
    return load_record(work_file(work, video_id))


def _dedup(videos: list[dict], work: Path, cfg: CurateConfig) -> list[dict]:
    """The clips that passed the filters, each marked with ``duplicate_of`` where it
    repeats an earlier clip; in the videos' order."""
    kept = [c for v in videos for c in v["clips"] if c["reason"] is None]
    if not kept:
        return []
    embeddings = np.stack(
        [load_arrays(work_file(work, c["video"]), c["start"], c["end"], "embedding") for c in kept]
    )
    for i, (j, similarity) in find_duplicates(embeddings, cfg.dedup).items():
        kept[i]["reason"] = "duplicate"
        kept[i]["duplicate_of"], kept[i]["similarity"] = kept[j]["id"], round(similarity, 4)
    return kept


def _write_shards(clips: list[dict], work: Path, dst: Path, cfg: CurateConfig) -> list[dict]:
    """One store per shard name, clips in their order; faces pixelated unless guard=false."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for clip in clips:
        if clip["reason"] is None:
            groups.setdefault((shard_name(clip, cfg.length_buckets), clip["fps"]), []).append(clip)

    def load(clip: dict) -> tuple[Any, Any]:
        path = work_file(work, clip["video"])
        frames = load_arrays(path, clip["start"], clip["end"], "frames")
        actions = load_arrays(path, clip["start"], clip["end"], "actions")
        return guard_frames(frames, cfg.guard), actions

    summaries = []
    for (name, fps), members in sorted(groups.items()):
        path = dst / "shards" / f"{name}-{fps:g}fps.zarr"
        summaries.append(write_shard(path, members, load, fps) | {"clips": len(members)})
    return summaries
