"""Where a world-model env step spends its time: ``WorldModelVectorEnv.step`` under
torch's profiler at 1, 16 and 64 sub-envs for every backend, by stage and by operator.

    python benchmarks/env_profile.py [--out DIR] [--checkpoints NAME_OR_DIR ...]
                                     [--batches N ...] [--steps N] [--amp SETTING]

- ``<backend>.b<N>.step_ms``: mean wall time of one step while profiled (the profiler
  adds a little to every operator, so read the shares, and ``env_speed.py`` for speed);
- ``stages``: milliseconds a step in each of the env's labelled stages (``dynamics``: the
  state track and frame prediction, ``decode``: the tokenizer, ``score``: reward and
  success), plus ``other`` (numpy copies, Python, autoresets);
- ``top_ops``: the operators with the most self CPU time, with their share of the step and
  their calls per step (many small calls at batch 1 point at Python and dispatch costs).

Writes DIR/env_profile.json and DIR/env_profile.md. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from cosmos_env.dynamics.release import load_world_model, shipped_world_models
from cosmos_env.envs.core import STEP_STAGES
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.precision import amp_words, describe_amp

TOP = 12  # operators listed per (backend, batch)


def profile_steps(env: WorldModelVectorEnv, steps: int, warmup: int = 3) -> dict:
    """Profile ``steps`` random-action steps of ``env`` after ``warmup`` unprofiled ones."""
    rng = np.random.default_rng(0)
    actions = lambda: rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)  # noqa: E731
    env.reset(seed=0)
    for _ in range(warmup):
        env.step(actions())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            env.step(actions())
        elapsed = time.perf_counter() - start
    step_ms = 1e3 * elapsed / steps
    events = prof.key_averages()
    stages = {e.key: e.cpu_time_total / 1e3 / steps for e in events if e.key in STEP_STAGES}
    stages["other"] = step_ms - sum(stages.values())
    ops = sorted(
        (e for e in events if e.key not in STEP_STAGES), key=lambda e: -e.self_cpu_time_total
    )
    top = [
        {
            "op": e.key,
            "self_ms": e.self_cpu_time_total / 1e3 / steps,
            "share": e.self_cpu_time_total / 1e3 / steps / step_ms,
            "calls": e.count / steps,
        }
        for e in ops[:TOP]
    ]
    return {"step_ms": step_ms, "steps": steps, "stages": stages, "top_ops": top}


def run(checkpoints: list[str], batches: list[int], steps: int, amp: str) -> dict:
    results: dict = {"machine": machine_info(), "amp": describe_amp(amp), "backends": []}
    for name in checkpoints:
        wm = load_world_model(name)
        entry: dict = {"checkpoint": str(wm.source)}
        for n in batches:
            env = WorldModelVectorEnv(num_envs=n, world_model=wm, amp=amp)
            entry[f"b{n}"] = profile_steps(env, steps)
            env.close()
        results[wm.backend] = entry
        results["backends"].append(wm.backend)
    return results


def markdown(results: dict) -> str:
    parts = [
        f"World-model env step profile. Precision: {amp_words(results['amp'])}. "
        f"{machine_line(results['machine'])}"
    ]
    for backend in results["backends"]:
        entry = results[backend]
        batches = [k for k in entry if k.startswith("b")]
        stage_names = sorted({s for b in batches for s in entry[b]["stages"]})
        rows = [
            [b[1:], f"{entry[b]['step_ms']:.1f}"]
            + [f"{entry[b]['stages'].get(s, 0.0):.1f}" for s in stage_names]
            for b in batches
        ]
        parts.append(f"### {backend}: `{entry['checkpoint']}`")
        parts.append(
            "Milliseconds a step, by stage:\n\n"
            + markdown_table(["sub-envs", "step"] + stage_names, rows)
        )
        for b in batches:
            rows = [
                [o["op"], f"{o['self_ms']:.2f}", f"{o['share']:.0%}", f"{o['calls']:.0f}"]
                for o in entry[b]["top_ops"]
            ]
            table = markdown_table(["operator", "self ms/step", "share", "calls/step"], rows)
            parts.append(f"Top operators at {b[1:]} sub-envs:\n\n{table}")
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--checkpoints", nargs="+", default=None, help="default: shipped push")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--steps", type=int, default=20, help="profiled steps per batch size")
    parser.add_argument("--amp", default="auto", choices=["auto", "true", "false"])
    args = parser.parse_args()
    set_torch_threads()
    torch.manual_seed(0)
    checkpoints = args.checkpoints or shipped_world_models("tabletop-push")
    results = run(checkpoints, args.batches, args.steps, args.amp)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "env_profile.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (args.out / "env_profile.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
