"""Bridge V2 conversion: speed, peak memory at two dataset sizes, and resuming after a kill.

    python benchmarks/bridge_convert.py [--quick] [--out DIR]

Writes synthetic raw Bridge trajectories (30 frames of 256x256 JPEGs each, made by the
test fixture writer tests/data/converters/bridge_fixtures.py) and converts 100 and 1000 of
them (10 and 40 with --quick) to 64x64 stores, each in a fresh subprocess that reports its
own peak RSS (VmHWM): a converter that streams trajectories has the same peak at both sizes. Then
it converts the larger set again in a subprocess that is SIGKILLed a third of the way in,
resumes in another, and checks that the store holds every source id once, in order.
Writes DIR/bridge_convert.json and DIR/bridge_convert.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "converters" / "bridge_fixtures.py"
FRAMES, SIZE, IMAGE_SIZE, GROUP = 30, 256, 64, 10


def write_source(root: Path, n: int) -> None:
    """`n` raw trajectories of FRAMES frames under root/part<k>/, GROUP per part."""
    spec = importlib.util.spec_from_file_location("bridge_fixtures", FIXTURES)
    fixtures = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fixtures  # dataclasses look their module up while defining
    spec.loader.exec_module(fixtures)
    for k in range(-(-n // GROUP)):
        fixtures.write_raw_dataset(
            root / f"part{k:04d}",
            lengths=(FRAMES,) * min(GROUP, n - k * GROUP),
            height=SIZE,
            width=SIZE,
            cameras=("images0",),
            keep_frames=False,
        )


def child(src: str, dst: str) -> None:
    """Run in a fresh process: convert, then print one JSON line with time and memory."""
    from cosmos_env.data.converters.bridge import convert_bridge

    rss_start = _vm_hwm_mb()
    start = time.perf_counter()
    summary = convert_bridge(src, dst, image_size=IMAGE_SIZE)
    seconds = time.perf_counter() - start
    result = {
        "episodes": summary.episodes,
        "resumed": summary.resumed,
        "frames": summary.frames,
        "skipped": len(summary.skipped),
        "seconds": seconds,
        "frames_per_s": summary.frames / seconds,
        # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a child
        # forked from a big parent would report the parent's size.
        "peak_rss_mb": _vm_hwm_mb(),
        "rss_after_imports_mb": rss_start,
    }
    print(json.dumps(result))


def _vm_hwm_mb() -> float:
    """Peak resident set so far (VmHWM) in MiB, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_cmd(src: Path, dst: Path) -> list[str]:
    return [sys.executable, __file__, "--child", str(src), str(dst)]


def run_child(src: Path, dst: Path) -> dict:
    out = subprocess.run(_child_cmd(src, dst), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def source_ids(store_path: Path) -> list[str]:
    from cosmos_env.data import EpisodeStore

    store = EpisodeStore.open(store_path, allow_incomplete=True)
    return [store.source_id(i) for i in range(store.n_episodes)]


def expected_ids(src: Path) -> list[str]:
    from cosmos_env.data.converters.bridge import scan_source

    return [d.relative_to(src).as_posix() for d in scan_source(src)[0]]


def kill_and_resume(src: Path, dst: Path, n: int) -> dict:
    """Convert `src` in a child killed (SIGKILL) once a third of it is committed, then
    resume in a fresh child; report what the store held before and after."""
    proc = subprocess.Popen(
        _child_cmd(src, dst), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    committed = 0
    while proc.poll() is None and committed < n // 3:
        time.sleep(0.2)
        try:
            committed = len(source_ids(dst))
        except Exception:  # the store is not created yet (or its first write is under way)
            continue
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(source_ids(dst))
    resumed = run_child(src, dst)
    ids, want = source_ids(dst), expected_ids(src)
    return {
        "killed": proc.returncode == -signal.SIGKILL,
        "episodes_before": before,
        "episodes_after": len(ids),
        "resumed_from": resumed["resumed"],
        "converted_after_resume": resumed["episodes"],
        "source_ids_unique": len(set(ids)) == len(ids),
        "source_ids_complete_in_order": ids == want,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 40 trajectories")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    small, large = (10, 40) if args.quick else (100, 1000)
    work = Path(tempfile.mkdtemp(prefix="bridge_bench_"))
    try:
        # src/first holds the small set; src (first + rest) the large one
        start = time.perf_counter()
        write_source(work / "src" / "first", small)
        write_source(work / "src" / "rest", large - small)
        results: dict = {"machine": machine_info(), "frames_per_trajectory": FRAMES}
        results["source_image"] = [SIZE, SIZE]
        results["image_size"], results["write_seconds"] = IMAGE_SIZE, time.perf_counter() - start
        for n, src in ((small, work / "src" / "first"), (large, work / "src")):
            results[f"convert_{n}"] = run_child(src, work / f"store_{n}.zarr")
        results["kill_resume"] = kill_and_resume(work / "src", work / "killed.zarr", large)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args.out, results, (small, large))


def write_report(out: Path, results: dict, sizes: tuple[int, int]) -> None:
    rows = [
        [
            n,
            r["frames"],
            r["seconds"],
            r["frames_per_s"],
            r["rss_after_imports_mb"],
            r["peak_rss_mb"],
        ]
        for n in sizes
        for r in [results[f"convert_{n}"]]
    ]
    table = markdown_table(
        [
            "trajectories",
            "frames",
            "seconds",
            "frames/s",
            "RSS after imports (MB)",
            "peak RSS (MB)",
        ],
        rows,
    )
    kr = results["kill_resume"]
    table += "\n\n" + markdown_table(
        ["killed", "episodes before", "episodes after", "unique ids", "complete, in order"],
        [
            [
                kr["killed"],
                kr["episodes_before"],
                kr["episodes_after"],
                kr["source_ids_unique"],
                kr["source_ids_complete_in_order"],
            ]
        ],
    )
    (out / "bridge_convert.json").write_text(json.dumps(results, indent=2))
    (out / "bridge_convert.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
