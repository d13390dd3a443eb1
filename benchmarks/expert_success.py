"""Scripted-expert success rate per task and noise level in the MuJoCo tabletop world.

    python benchmarks/expert_success.py [--quick] [--out DIR]

Writes DIR/expert_success.json (``<task>.<noise>.success_rate`` with a 95% Wilson interval)
and DIR/expert_success.md. An episode succeeds if the task's success test holds at any step
before the time limit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.policy_ranking import wilson_interval
from cosmos_env.machine import default_workers, machine_info, share_cores

NOISE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
TASKS = ("push", "pick_place")


def _success_rate(job: tuple[str, float, int]) -> tuple[str, float, int]:
    from cosmos_env.sim.experts import ScriptedExpert
    from cosmos_env.sim.tabletop_env import TabletopEnv

    task, noise, episodes = job
    env = TabletopEnv(task=task, terminate_on_success=True)
    wins = 0
    for ep in range(episodes):
        _, info = env.reset(seed=ep)
        expert = ScriptedExpert(task, noise, seed=10_000 + ep)
        for _ in range(env.task.max_episode_steps):
            _, _, terminated, _, info = env.step(expert.act(info["state"]))
            if terminated:
                break
        wins += bool(info["is_success"])
    env.close()
    return task, noise, wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 episodes instead of 100")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    episodes = 20 if args.quick else 100
    jobs = [(task, noise, episodes) for task in TASKS for noise in NOISE_LEVELS]
    workers = default_workers(len(jobs))
    # An executor, not mp.Pool: a worker that dies (a renderer crash) raises here instead
    # of leaving the run waiting forever.
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, context, share_cores, (workers,)) as pool:
        outcomes = list(pool.map(_success_rate, jobs))
    results: dict = {"machine": machine_info(), "episodes": episodes}
    rows = []
    for task, noise, wins in outcomes:
        low, high = wilson_interval(wins, episodes)
        rate = wins / episodes
        results.setdefault(task, {})[str(noise)] = {"success_rate": rate, "ci95": [low, high]}
        rows.append([task, noise, episodes, rate, f"[{low:.2f}, {high:.2f}]"])
    table = markdown_table(["task", "noise", "episodes", "success rate", "95% CI"], rows)
    (args.out / "expert_success.json").write_text(json.dumps(results, indent=2))
    (args.out / "expert_success.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
