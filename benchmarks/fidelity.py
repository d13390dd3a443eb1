"""World-model fidelity against MuJoCo on held-out episodes, open loop.

    python benchmarks/fidelity.py [--quick] [--out DIR] [--checkpoint NAME_OR_PATH]
        [--episodes N] [--seed S] [--sweep-steps]

Fresh MuJoCo push episodes (scripted expert at noise 0.3, seed 9999: no training store
uses it) are cut into 16-step windows starting at frames 0, 8, 16, 24 and 32; the world
model rolls each window's actions out open loop from its first frame, with the (up to 3)
frames and actions before it as context, as video world models are usually scored
(``cosmos_env.eval.compare``). Start 0 is the env's case: one frame, padded context.
A model with a state track starts it from MuJoCo's states of those frames (both worlds
start identical); ``<kind>.frames_only_start0`` scores start 0 again with the state read
from the first frame by the probe, the case of a user who has frames only.
Writes fidelity.json (over all starts under the model kind, e.g. ``diffusion.psnr_h16``,
with per-horizon curves; each start alone under ``diffusion.by_start.<start>``),
fidelity.md and fidelity.png. ``--sweep-steps`` also scores sampler steps 1, 2 and 3 on the
same episodes (``sweep.<steps>``), to pick the default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cosmos_env.dynamics.release import DEFAULT_WORLD_MODEL, load_world_model
from cosmos_env.eval import report
from cosmos_env.eval.compare import HELD_OUT_SEED, compare, simulate, summarise, window

TASK, POLICY, NOISE, HORIZON = "push", "scripted", 0.3, 16
STARTS = (0, 8, 16, 24, 32)  # episodes last 50 steps: every window fits
SWEEP_STEPS = (1, 2, 3)


def _entry(result: dict) -> dict:
    """A compare result flattened: summary keys at the top, then the rest."""
    rest = {k: result[k] for k in ("sampler", "sampler_steps", "timing", "per_horizon")}
    return result["summary"] | rest


def _steps(entry: dict) -> int:
    return entry["sampler_steps"]


def _label(entry: dict) -> str:
    return f"{entry['sampler']}, {entry['sampler_steps']} step(s)"


def _over_starts(wm, full, seed: int, steps: int) -> dict:
    """One sampler setting scored on every start's window; curves averaged over starts
    (each start has the same episodes), summary recomputed from them."""
    results = {}
    for start in STARTS:
        truth, history = window(full, start, HORIZON, wm.dynamics.cfg.context)
        results[start] = compare(wm, truth, seed, wm.sampler, steps, history=history)[0]
    first = results[STARTS[0]]
    per_horizon = {
        k: [float(x) for x in np.mean([r["per_horizon"][k] for r in results.values()], axis=0)]
        for k in first["per_horizon"]
    }
    timing = {
        k: sum(r["timing"][k] for r in results.values()) for k in ("mujoco_s", "world_model_s")
    }
    n_frames = len(STARTS) * full.actions.shape[0] * HORIZON
    timing["mujoco_frames_per_s"] = n_frames / timing["mujoco_s"]
    timing["world_model_frames_per_s_batched"] = n_frames / timing["world_model_s"]
    merged = first | {"summary": summarise(per_horizon), "per_horizon": per_horizon}
    entry = _entry(merged | {"timing": timing})
    entry["by_start"] = {str(s): r["summary"] for s, r in results.items()}
    if getattr(wm.dynamics.cfg, "state_track", False):
        truth, history = window(full, 0, HORIZON, wm.dynamics.cfg.context)
        probe_start = compare(
            wm, truth, seed, wm.sampler, steps, history=history, true_initial_states=False
        )[0]
        entry["frames_only_start0"] = probe_start["summary"]
    return entry


def run(checkpoint: str, episodes: int, seed: int, sweep: bool) -> dict:
    """Every score of the benchmark, as fidelity.json holds them."""
    wm = load_world_model(checkpoint)
    kind = getattr(wm.dynamics.cfg, "kind", "diffusion")
    full = simulate(TASK, POLICY, NOISE, episodes, max(STARTS) + HORIZON, seed, wm.image_size)
    main = _over_starts(wm, full, seed, wm.sampler_steps)
    results = {
        "checkpoint": str(wm.source),
        "task": TASK,
        "policy": POLICY,
        "noise": NOISE,
        "horizon": HORIZON,
        "starts": list(STARTS),
        "held_out_episodes": episodes,
        "seed": seed,
        "kind": kind,
        kind: main,
    }
    if sweep:
        results["sweep"] = {}
        for steps in SWEEP_STEPS:
            same = steps == wm.sampler_steps
            results["sweep"][str(steps)] = main if same else _over_starts(wm, full, seed, steps)
    return results


def write(results: dict, out: Path) -> str:
    """fidelity.json, fidelity.md, fidelity.png; returns the markdown."""
    kind = results["kind"]
    main = results[kind]
    entries = [main] + [e for e in results.get("sweep", {}).values() if e is not main]
    entries = sorted({e["sampler_steps"]: e for e in entries}.values(), key=_steps)
    default = main["sampler_steps"]
    rows = {
        f"{kind} ({_label(e)}{', default' if _steps(e) == default else ''})": e for e in entries
    }
    by_start = {
        s: e | {"sampler_steps": main["sampler_steps"]} for s, e in main["by_start"].items()
    }
    if "frames_only_start0" in main:
        by_start["0, state from the probe (frames only)"] = main["frames_only_start0"]
    timing = main["timing"]
    speed = timing["world_model_frames_per_s_batched"] / timing["mujoco_frames_per_s"]
    text = (
        f"World model `{results['checkpoint']}` vs MuJoCo, {results['task']}: "
        f"{results['held_out_episodes']} held-out episodes (seed {results['seed']}), "
        f"scripted expert at noise {results['noise']}, open loop for {results['horizon']} "
        f"steps from frames {results['starts']} (the frames before each start as context). "
        "`h16` columns are at h = 16.\n\n"
        f"{report.summary_table(rows, 'model (sampler, steps)')}\n\n"
        f"By start frame (default sampler; start 0 = the env's case, one frame of context; "
        "a state track starts from MuJoCo's state unless marked):"
        f"\n\n{report.summary_table(by_start, 'start frame')}\n\n"
        f"Default sampler per horizon:\n\n{report.horizon_table(main['per_horizon'])}\n\n"
        f"World model (batched over {results['held_out_episodes']} episodes, incl. decode) "
        f"produced frames {speed:.3g}x as fast as MuJoCo (step + render + expert) in this run.\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "fidelity.md").write_text(text)
    curves = {_label(e): e["per_horizon"] for e in rows.values()}
    report.plot_fidelity(curves, out / "fidelity.png")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 episodes instead of 64")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--checkpoint", default=DEFAULT_WORLD_MODEL)
    parser.add_argument("--episodes", type=int, default=None, help="default 64 (8 with --quick)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--sweep-steps", action="store_true", help="also sampler steps 1, 2, 3")
    args = parser.parse_args()
    episodes = args.episodes or (8 if args.quick else 64)
    results = run(args.checkpoint, episodes, args.seed, args.sweep_steps)
    print(write(results, args.out))


if __name__ == "__main__":
    main()
