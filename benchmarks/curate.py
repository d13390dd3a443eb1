"""Curation against planted truth, and its throughput on the local pool and on Ray.

    python benchmarks/curate.py [--quick] --out DIR [--clips 200] [--executors local ray]

Writes the synthetic corpus of `curate_corpus.py` (tabletop clips with planted cuts, static,
blurred, dark, over-exposed, too-short and duplicated clips, plus two unreadable files),
curates it with each executor in turn (same settings, same cores), and writes
``DIR/curate.json`` and ``DIR/curate.md``:

- precision and recall of the splitter's cuts (a detected cut within one frame of a planted
  one) and of every filter and the deduplicator against the planted clips; a planted clip
  counts as the curated clip that covers most of it;
- clips/s and frames/s of the per-video stages under each executor, and Ray's overhead
  (its wall time over the local pool's);
- whether the executors wrote identical shards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from curate_corpus import write_corpus  # noqa: E402

from cosmos_env.eval.media import markdown_table  # noqa: E402
from cosmos_env.machine import machine_info  # noqa: E402

REASON_OF_KIND = {
    "static": "static",
    "blurred": "blurred",
    "dark": "too dark",
    "bright": "over-exposed",
    "short": "too short",
}


def _pr(tp: int, predicted: int, actual: int) -> dict[str, float]:
    return {
        "precision": tp / predicted if predicted else 1.0,
        "recall": tp / actual if actual else 1.0,
        "planted": actual,
        "found": predicted,
    }


def score_cuts(truth: dict, records: dict[str, dict]) -> dict[str, float]:
    """Detected cuts within one frame of planted ones."""
    tp = predicted = actual = 0
    for name, video in truth["videos"].items():
        found = records[name].get("cuts", [])
        planted = video["cuts"]
        tp += sum(any(abs(c - p) <= 1 for p in planted) for c in found)
        predicted, actual = predicted + len(found), actual + len(planted)
    return _pr(tp, predicted, actual)


def _covering(planted: dict, clips: list[dict]) -> dict | None:
    """The curated clip that overlaps most of a planted span."""
    overlap = [min(c["end"], planted["end"]) - max(c["start"], planted["start"]) for c in clips]
    best = int(np.argmax(overlap)) if overlap else -1
    return clips[best] if best >= 0 and overlap[best] > 0 else None


def score_clips(truth: dict, records: dict[str, dict]) -> dict[str, dict]:
    """Precision and recall of each drop reason against the planted kinds."""
    matched = []  # (planted kind, curated reason, planted clip, curated clip)
    for name, video in truth["videos"].items():
        for planted in video["clips"]:
            clip = _covering(planted, records[name]["clips"])
            matched.append((planted["kind"], clip["reason"] if clip else "missing", planted, clip))
    all_reasons = [c["reason"] for r in records.values() for c in r["clips"] if c["reason"]]
    scores = {}
    for kind, reason in REASON_OF_KIND.items():
        tp = sum(k == kind and r == reason for k, r, _, _ in matched)
        scores[reason] = _pr(tp, all_reasons.count(reason), sum(k == kind for k, *_ in matched))
    scores["duplicate"] = _score_duplicates(matched, all_reasons.count("duplicate"))
    return scores


def _score_duplicates(matched: list, flagged: int) -> dict[str, float]:
    """A planted copy is found when it is flagged as a duplicate of its original's clip."""
    clip_of_original = {p["id"]: c for _, _, p, c in matched if p.get("id") is not None}
    copies = [(p, c) for k, _, p, c in matched if k in ("exact_dup", "near_dup")]
    tp = 0
    for planted, clip in copies:
        original = clip_of_original[planted["copy_of"]]
        if clip and original and clip.get("duplicate_of") == original["id"]:
            tp += 1
        elif clip and original and original.get("duplicate_of") == clip["id"]:
            tp += 1
    return _pr(tp, flagged, len(copies))


def _records(dst: Path) -> dict[str, dict]:
    by_video: dict[str, dict] = {}
    for line in (dst / "clips.jsonl").read_text().splitlines():
        clip = json.loads(line)
        by_video.setdefault(clip["video"], {"clips": []})["clips"].append(clip)
    report = json.loads((dst / "report.json").read_text())
    for name, cuts in report["cuts"].items():
        by_video.setdefault(name, {"clips": []})["cuts"] = cuts
    return by_video


def run_curate(src: Path, dst: Path, executor: str, workers: int) -> dict:
    from cosmos_env.config import load_config
    from cosmos_env.curate.config import CurateConfig
    from cosmos_env.curate.pipeline import curate

    shutil.rmtree(dst, ignore_errors=True)
    overrides = [f"src={src}", f"dst={dst}", f"executor={executor}", f"workers={workers}"]
    start = time.perf_counter()
    curate(load_config("curate", CurateConfig, overrides))
    wall = time.perf_counter() - start
    return json.loads((dst / "report.json").read_text()) | {"wall_s": wall}


def shards_identical(a: Path, b: Path) -> bool:
    """Every array of every shard equal, and the same instructions and source ids."""
    from cosmos_env.data.store import EpisodeStore

    names = sorted(p.name for p in (a / "shards").iterdir())
    if names != sorted(p.name for p in (b / "shards").iterdir()):
        return False
    for name in names:
        x, y = EpisodeStore.open(a / "shards" / name), EpisodeStore.open(b / "shards" / name)
        if x.n_episodes != y.n_episodes:
            return False
        for i in range(x.n_episodes):
            ex, ey = x.load_episode(i), y.load_episode(i)
            if any(not np.array_equal(ex[k], ey[k]) for k in ex):
                return False
            if (x.instruction(i), x.source_id(i)) != (y.instruction(i), y.source_id(i)):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 clips")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--clips", type=int, default=None, help="default 200 (quick: 40)")
    parser.add_argument("--executors", nargs="+", default=["local", "ray"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n_clips = args.clips or (40 if args.quick else 200)
    work = args.out / "curate"
    truth = write_corpus(work / "corpus", n_clips)
    runs = {
        e: run_curate(work / "corpus/videos", work / e, e, args.workers) for e in args.executors
    }
    first = args.executors[0]
    records = _records(work / first)
    results = {
        "quick": args.quick,
        "machine": machine_info(),
        "clips_planted": n_clips,
        "cuts": score_cuts(truth, records),
        "filters": score_clips(truth, records),
        "unreadable_skipped": sorted(runs[first]["stages"]["decode"]["dropped"]),
        "executors": {
            e: {k: r[k] for k in ("clips_per_s", "frames_per_s", "seconds", "wall_s")}
            for e, r in runs.items()
        },
        "stages": runs[first]["stages"],
    }
    if "local" in runs and "ray" in runs:
        results["ray_overhead"] = runs["ray"]["seconds"] / runs["local"]["seconds"]
        results["identical_shards"] = shards_identical(work / "local", work / "ray")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curate.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (args.out / "curate.md").write_text(text)
    print(text)


def table(results: dict) -> str:
    rows = [["split (cuts)", *_cells(results["cuts"])]]
    rows += [[f"filter: {k}", *_cells(v)] for k, v in results["filters"].items()]
    text = f"Curation of {results['clips_planted']} planted clips\n\n"
    text += markdown_table(["stage", "precision", "recall", "planted", "found"], rows)
    speed = [
        [e, r["clips_per_s"], r["frames_per_s"], r["seconds"]]
        for e, r in results["executors"].items()
    ]
    text += "\n\n" + markdown_table(["executor", "clips/s", "frames/s", "seconds"], speed)
    if "ray_overhead" in results:
        text += f"\n\nRay's time over the local pool's: {results['ray_overhead']:.2f}x; "
        text += f"identical shards: {results['identical_shards']}\n"
    return text


def _cells(s: dict) -> list:
    return [s["precision"], s["recall"], s["planted"], s["found"]]


if __name__ == "__main__":
    main()
