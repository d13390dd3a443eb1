"""The per-video stages: decode, split, filter, annotate and embed one video.

`curate_video` is what an executor's worker runs for each video. It writes the kept
clips' frames (and actions) and every clip's record to one ``.npz`` in the work folder
(atomically: a temporary file renamed), so that a killed run re-run skips the videos already
done. A video that cannot be decoded yields a record with its reason and no clips.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_env.curate.annotate import Captioner, annotate, load_captioner
from cosmos_env.curate.config import CurateConfig
from cosmos_env.curate.dedup import embed_clip
from cosmos_env.curate.filters import clip_stats, reject_reason
from cosmos_env.curate.split import clips_of_shot, detect_cuts, shots
from cosmos_env.curate.video import VideoError, VideoSource, read_video

DEFAULT_FPS = 10.0  # when neither the container nor the sidecar states one

_worker: dict[str, Any] = {}


def init_worker(cfg: CurateConfig) -> None:
    """Load what every video needs once per worker: the tokenizer and the captioner."""
    from cosmos_env.tokenizer.release import load_tokenizer

    _worker.update(
        cfg=cfg,
        tokenizer=load_tokenizer(cfg.dedup.tokenizer).eval(),
        captioner=load_captioner(cfg.captioner),
    )


def work_file(work: Path, video_id: str) -> Path:
    """Where one video's results are kept between runs."""
    return work / f"{hashlib.sha1(video_id.encode()).hexdigest()[:20]}.npz"


def curate_video(job: tuple[VideoSource, str]) -> dict[str, Any]:
    """Run the per-video stages on ``job`` = (video, work folder); return the video record
    (its clips' records without frames). The frames go to the work file."""
    source, work = job
    cfg: CurateConfig = _worker["cfg"]
    record: dict[str, Any] = {"video": source.video_id, "frames": 0, "clips": []}
    arrays: dict[str, np.ndarray] = {}
    try:
        frames, container_fps = read_video(source.path)
    except VideoError as e:
        record["error"] = str(e)
    else:
        fps = float(source.metadata.get("fps") or container_fps or DEFAULT_FPS)
        record |= {"frames": len(frames), "fps": fps}
        cuts = detect_cuts(frames, cfg.split)
        known = [b for b in source.boundaries() if 0 < b < len(frames)]
        record |= {"cuts": cuts, "boundaries": known}
        for start, end in shots(len(frames), sorted(set(cuts) | set(known))):
            if end - start < cfg.split.min_frames:
                record["clips"].append(_clip_record(source, start, end, "too short"))
                arrays[f"thumb_{start}_{end}"] = frames[(start + end) // 2]
                continue
            for span in clips_of_shot(start, end, cfg.split):
                clip = _curate_clip(source, frames, span, fps, _worker["captioner"], arrays)
                record["clips"].append(clip)
    _save(work_file(Path(work), source.video_id), record, arrays)
    return record


def _clip_record(source: VideoSource, start: int, end: int, reason: str | None) -> dict:
    clip_id = f"{source.video_id}#{start}-{end}"
    return {"id": clip_id, "video": source.video_id, "start": start, "end": end, "reason": reason}


def _curate_clip(
    source: VideoSource,
    frames: np.ndarray,
    span: tuple[int, int],
    fps: float,
    captioner: Captioner,
    arrays: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Filter one clip; a kept one is annotated, embedded and its frames put in ``arrays``."""
    cfg: CurateConfig = _worker["cfg"]
    clip_frames = frames[span[0] : span[1]]
    stats = clip_stats(clip_frames, cfg.filter)
    record = _clip_record(source, *span, reject_reason(stats, cfg.filter))
    record["stats"] = {k: round(v, 5) for k, v in stats.items()}
    key = f"{span[0]}_{span[1]}"
    arrays[f"thumb_{key}"] = clip_frames[len(clip_frames) // 2]  # for the report's sheets
    if record["reason"] is not None:
        return record
    described = {"video": source.video_id, "fps": fps, "instruction": source.instruction_at(*span)}
    described |= {k: v for k, v in source.metadata.items() if _is_scalar(v)}
    record |= annotate(clip_frames, stats, described, span, captioner)
    arrays[f"frames_{key}"] = clip_frames
    arrays[f"embedding_{key}"] = embed_clip(clip_frames, _worker["tokenizer"], cfg.dedup.size)
    actions = source.actions(*span)
    if actions is not None:
        arrays[f"actions_{key}"] = _normalised(actions, source.metadata, len(clip_frames))
        record["action_dim"] = actions.shape[1]
        record["action_names"] = source.metadata.get("action_names")
    return record


def _normalised(actions: np.ndarray, meta: dict[str, Any], n: int) -> np.ndarray:
    """Sidecar actions in [-1, 1] (scaled from ``action_low``/``action_high`` when given)."""
    if len(actions) != n or actions.ndim != 2:
        raise ValueError(f"sidecar actions must be one vector per frame, got shape {actions.shape}")
    if "action_low" in meta and "action_high" in meta:
        low, high = np.asarray(meta["action_low"]), np.asarray(meta["action_high"])
        actions = 2 * (actions - low) / (high - low) - 1
    return actions.astype(np.float32)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _save(path: Path, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """One video's results, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, record=np.array(json.dumps(record)), **arrays)
    tmp.replace(path)


def load_record(path: Path) -> dict[str, Any]:
    """The record a finished video left in the work folder."""
    with np.load(path) as data:
        return json.loads(str(data["record"]))


def load_arrays(path: Path, start: int, end: int, name: str) -> np.ndarray | None:
    """One array (``frames``, ``actions``, ``embedding``, ``thumb``) of the clip at
    [start, end) of a work file, or None when it has none."""
    with np.load(path) as data:
        key = f"{name}_{start}_{end}"
        return data[key] if key in data.files else None
