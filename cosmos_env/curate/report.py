"""The curate report: counts in and out of every stage with reasons, example frames of kept
and dropped clips, throughput. Written last (``report.json`` marks a finished DST)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cosmos_env.curate.clips import load_arrays, work_file
from cosmos_env.curate.config import CurateConfig
from cosmos_env.eval.media import contact_sheet, markdown_table, write_png

THUMB = 64  # pixels per example frame in the sheets
EXAMPLES = 8  # per row of a sheet


def stage_counts(videos: list[dict]) -> dict[str, Any]:
    """In and out of each stage, and why things went out."""
    clips = [c for v in videos for c in v["clips"]]
    unreadable = [v for v in videos if "error" in v]
    split = [c for c in clips if c["reason"] != "too short"]
    filtered = [
        c for c in split if c["reason"] not in ("too dark", "over-exposed", "static", "blurred")
    ]
    kept = [c for c in filtered if c["reason"] is None]
    why = Counter(c["reason"] for c in clips if c["reason"])
    return {
        "decode": {
            "in": len(videos),
            "out": len(videos) - len(unreadable),
            "dropped": {v["video"]: v["error"] for v in unreadable},
        },
        "split": {
            "in": len(videos) - len(unreadable),
            "cuts": sum(len(v.get("cuts", [])) for v in videos),
            "out": len(split),
            "dropped": {"too short": why["too short"]},
        },
        "filter": {
            "in": len(split),
            "out": len(filtered),
            "dropped": {
                r: why[r] for r in ("too dark", "over-exposed", "static", "blurred") if why[r]
            },
        },
        "dedup": {
            "in": len(filtered),
            "out": len(kept),
            "dropped": {"duplicate": why["duplicate"]},
        },
    }


def _sheet(dst: Path, clips: list[dict], work: Path, name: str, guard: bool) -> str | None:
    """A PNG of example frames: one row per reason (or of kept clips), ``EXAMPLES`` each."""
    by_reason: dict[str, list[np.ndarray]] = {}
    for clip in clips:
        row = by_reason.setdefault(clip["reason"] or "kept", [])
        if len(row) < EXAMPLES:
            thumb = load_arrays(work_file(work, clip["video"]), clip["start"], clip["end"], "thumb")
            if thumb is not None:
                row.append(cv2.resize(thumb, (THUMB, THUMB), interpolation=cv2.INTER_AREA))
    rows = [
        np.stack(r + [np.full_like(r[0], 255)] * (EXAMPLES - len(r)))
        for r in by_reason.values()
        if r
    ]
    if not rows:
        return None
    path = write_png(dst / f"{name}.png", contact_sheet(rows, EXAMPLES), guard)
    return path.name


def write_report(
    dst: Path,
    cfg: CurateConfig,
    videos: list[dict],
    shards: list[dict],
    processed: int,
    seconds: float,
) -> dict[str, Any]:
    """Write clips.jsonl, kept.png, dropped.png, report.md and (last) report.json."""
    work = dst / ".work"
    clips = [c for v in videos for c in v["clips"]]
    with open(dst / "clips.jsonl", "w") as f:
        for clip in clips:
            f.write(json.dumps(clip) + "\n")
    done = [v for v in videos if "error" not in v]
    frames = sum(v["frames"] for v in done)
    report = {
        "src": cfg.src,
        "executor": cfg.executor,
        "stages": stage_counts(videos),
        "shards": shards,
        "clips": len(clips),
        "frames": frames,
        "cuts": {v["video"]: v.get("cuts", []) for v in videos},
        "seconds": round(seconds, 3),
        "videos_processed": processed,
        # throughput of this run's per-video stages (decode to embed); null when resumed whole
        "clips_per_s": round(len(clips) / seconds, 3)
        if processed == len(videos) and seconds
        else None,
        "frames_per_s": round(frames / seconds, 3)
        if processed == len(videos) and seconds
        else None,
        "examples": {
            "kept": _sheet(dst, [c for c in clips if c["reason"] is None], work, "kept", cfg.guard),
            "dropped": _sheet(dst, [c for c in clips if c["reason"]], work, "dropped", cfg.guard),
        },
        "settings": asdict(cfg),
    }
    (dst / "report.md").write_text(_markdown(report))
    (dst / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return {k: report[k] for k in ("stages", "shards", "clips_per_s", "frames_per_s")}


def _markdown(report: dict[str, Any]) -> str:
    rows = []
    for stage, c in report["stages"].items():
        dropped = c["dropped"]
        why = (
            "; ".join(f"{k}: {v}" for k, v in dropped.items())
            if stage != "decode"
            else ("; ".join(f"{k} ({v})" for k, v in dropped.items()))
        )
        rows.append([stage, c["in"], c["out"], why or "-"])
    text = f"# Curated {report['src']}\n\n" + markdown_table(
        ["stage", "in", "out", "dropped"], rows
    )
    text += "\n\n" + markdown_table(
        ["shard", "clips", "frames"],
        [[Path(s["path"]).name, s["episodes"], s["frames"]] for s in report["shards"]],
    )
    speed = f"{report['clips_per_s']} clips/s, {report['frames_per_s']} frames/s"
    text += f"\n\nThroughput ({report['executor']}): {speed}\n"
    return text
