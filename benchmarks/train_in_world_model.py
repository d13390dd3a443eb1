"""Train in the world model, test in MuJoCo: behaviour cloning on world-model data vs on
MuJoCo data, both evaluated in MuJoCo.

    python benchmarks/train_in_world_model.py [--quick] [--out DIR] [--backend diffusion]

The same scripted expert (noise 0) records N episodes twice: in MuJoCo (``generate``) and
inside the world model (``synthesize``: frames, gripper state and the expert's inputs all
come from the world model; resets are live MuJoCo resets, so both datasets start from the
same distribution). One BC recipe (``policies/train_bc.py``, same steps and seed) trains
on each, and both policies run the same held-out initial states in MuJoCo. Writes
``DIR/train_in_world_model.json`` (``mujoco_trained`` and ``world_model_trained`` success
rates with 95% intervals, and ``ratio`` = world-model-trained / MuJoCo-trained) and
``DIR/train_in_world_model.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cosmos_env.config import GenerateConfig, SynthesizeConfig, load_config
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.policy_ranking import wilson_interval
from cosmos_env.generate import generate
from cosmos_env.machine import machine_info
from policies.bc import BCPolicy
from policies.evaluate import initial_seeds, mujoco_vector_env, run_in_mujoco
from policies.train_bc import load_train_bc_config, train_bc

EVAL_SEED = 2026  # the policy-evaluation suite's held-out initial states
DATA_SEED = 4242  # recording seeds, apart from the world model's training data (0-6)


def record(kind: str, out: Path, episodes: int, backend: str) -> Path:
    """Expert episodes in MuJoCo (``kind="mujoco"``) or in the world model -> store path."""
    overrides = ["task=push", "policy=scripted", "noise=0.0", f"episodes={episodes}"]
    overrides += [f"out={out}", f"seed={DATA_SEED}"]
    if kind == "mujoco":
        generate(load_config("generate", GenerateConfig, overrides))
    else:
        overrides += [f"backend={backend}", "reset_source=mujoco"]
        generate(load_config("synthesize", SynthesizeConfig, overrides, ("checkpoint",)))
    return out


def train_and_test(store: Path, out: Path, steps: int, episodes: int) -> dict:
    """BC on ``store``; its success in MuJoCo on the held-out initial states."""
    summary = train_bc(
        load_train_bc_config(
            [f"data={store}", "stores=*", f"out={out}", f"steps={steps}", f"save_at=[{steps}]"]
        )
    )
    policy = BCPolicy.load(summary["releases"][-1])
    env = mujoco_vector_env("push", episodes)
    try:
        results = run_in_mujoco(policy, env, initial_seeds(EVAL_SEED, episodes))
    finally:
        env.close()
    wins = int(results.success.sum())
    return {
        "success_rate": results.success_rate,
        "ci95": list(wilson_interval(wins, episodes)),
        "mean_return": float(results.returns.mean()),
        "bc_val_loss": summary["val_loss"],
        "bc_seconds": round(summary["seconds"], 1),
        "release": str(summary["releases"][-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer episodes and BC steps")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--backend", default="diffusion", choices=["diffusion", "ar"])
    args = parser.parse_args()
    data_episodes, steps, eval_episodes = (60, 1000, 16) if args.quick else (200, 3000, 50)
    work = args.out / "train_in_world_model"
    start = time.perf_counter()
    results: dict = {"machine": machine_info(), "backend": args.backend}
    results["data_episodes"] = data_episodes
    results |= {"bc_steps": steps, "eval_episodes": eval_episodes}
    for name, kind in (("mujoco_trained", "mujoco"), ("world_model_trained", args.backend)):
        store = record(kind, work / f"{kind}-push.zarr", data_episodes, args.backend)
        results[name] = train_and_test(store, work / f"bc-{kind}", steps, eval_episodes)
        print(name, results[name]["success_rate"])
    real = results["mujoco_trained"]["success_rate"]
    results["ratio"] = results["world_model_trained"]["success_rate"] / real if real else None
    results["seconds"] = round(time.perf_counter() - start, 1)
    rows = [
        [name.replace("_", " "), r["success_rate"], f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"]
        + [r["mean_return"], r["bc_val_loss"]]
        for name, r in ((n, results[n]) for n in ("mujoco_trained", "world_model_trained"))
    ]
    head = ["BC trained on", "MuJoCo success", "95% CI", "MuJoCo return", "BC val loss"]
    table = markdown_table(head, rows)
    ratio = "n/a (MuJoCo-trained BC never succeeded)" if real == 0 else f"{results['ratio']:.2f}"
    text = (
        f"BC on {data_episodes} expert episodes from each world ({args.backend} world model), "
        f"{steps} steps; {eval_episodes} held-out MuJoCo episodes. "
        f"world-model-trained / MuJoCo-trained success: {ratio}\n\n{table}\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_in_world_model.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "train_in_world_model.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
