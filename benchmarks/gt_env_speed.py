"""Ground-truth env speed: step + render frames/s of the tabletop MuJoCo env in one process
and in one process per usable core, and the throughput of `generate` (200 scripted
episodes, its default worker count: one per core) with the store's bytes per frame against
raw uint8.

    python benchmarks/gt_env_speed.py [--quick] [--out DIR]

Writes DIR/gt_env_speed.json and DIR/gt_env_speed.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cosmos_env.config import GenerateConfig, WorldConfig
from cosmos_env.eval.media import markdown_table
from cosmos_env.generate import generate
from cosmos_env.machine import (
    default_workers,
    machine_info,
    machine_line,
    share_cores,
    usable_cores,
)


def _env_worker(args: tuple[int, int, int, object, int]) -> tuple[float, float, int]:
    from cosmos_env.sim.tabletop_env import TabletopEnv

    steps, image_size, seed, barrier, processes = args
    share_cores(processes)
    env = TabletopEnv(task="push", image_size=image_size, terminate_on_success=False)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 7)).astype(np.float32)
    env.reset(seed=seed)
    env.step(actions[0])  # warm up the renderer outside the timed loop
    barrier.wait(timeout=600)  # a sibling that died breaks the barrier instead of hanging
    start = time.perf_counter()
    for t in range(steps):
        if t % 50 == 0:
            env.reset(seed=seed + t)
        env.step(actions[t])
    end = time.perf_counter()
    env.close()
    return start, end, steps


def env_frames_per_s(processes: int, steps: int, image_size: int) -> float:
    """Aggregate step+render frames/s of ``processes`` envs stepping concurrently."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        # An executor, not mp.Pool: a worker that dies raises here instead of hanging.
        with ProcessPoolExecutor(processes, ctx) as pool:
            jobs = [(steps, image_size, 100 * i, barrier, processes) for i in range(processes)]
            results = list(pool.map(_env_worker, jobs))
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    return sum(r[2] for r in results) / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and episodes")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps = 500 if args.quick else 3000
    episodes = 20 if args.quick else 200

    results: dict = {"quick": args.quick, "machine": machine_info()}
    cores = results["processes"] = usable_cores()
    results["frames_per_s_1proc"] = env_frames_per_s(1, steps, 64)
    results["frames_per_s_all_cores"] = env_frames_per_s(cores, steps, 64)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerateConfig(
            world=WorldConfig(),
            task="push",
            noise=0.3,
            episodes=episodes,
            out=str(Path(tmp) / "push.zarr"),
        )
        summary = generate(cfg)
    results["generate"] = {
        "workers": default_workers(episodes),
        "episodes": summary["episodes"],
        "frames": summary["frames"],
        "steps_per_episode": summary["frames"] // summary["episodes"] - 1,
        "frames_per_s": summary["frames_per_s"],
        "bytes_per_frame": summary["bytes_per_frame"],
        "raw_bytes_per_frame": summary["raw_bytes_per_frame"],
        "compression_ratio": summary["raw_bytes_per_frame"] / summary["bytes_per_frame"],
    }
    gen, all_cores = results["generate"], results["frames_per_s_all_cores"]
    table = markdown_table(
        ["measure", "value"],
        [
            ["env step+render, 1 process (frames/s, 64x64)", results["frames_per_s_1proc"]],
            [f"env step+render, {cores} processes (frames/s, 64x64)", all_cores],
            [f"{cores}-process speed-up", all_cores / results["frames_per_s_1proc"]],
            [
                f"generate {gen['episodes']} push episodes, {gen['workers']} workers (frames/s)",
                gen["frames_per_s"],
            ],
            ["store bytes per frame (rgb, compressed)", gen["bytes_per_frame"]],
            ["raw uint8 bytes per frame", gen["raw_bytes_per_frame"]],
            ["compression ratio", gen["compression_ratio"]],
        ],
    )
    (args.out / "gt_env_speed.json").write_text(json.dumps(results, indent=2))
    table += f"\n\n{machine_line(results['machine'])}"
    (args.out / "gt_env_speed.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
