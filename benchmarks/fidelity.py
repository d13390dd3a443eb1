"""World-model fidelity against MuJoCo on held-out episodes, open loop, every backend.

    python benchmarks/fidelity.py [--quick] [--out DIR] [--checkpoints NAME_OR_PATH ...]
        [--episodes N] [--seed S] [--sweep-steps] [--amp auto|true|false]

Fresh MuJoCo push episodes (scripted expert at noise 0.3, seed 9999: no training store
uses it) are cut into 16-step windows starting at frames 0, 8, 16, 24 and 32; each world
model (by default every shipped push model: ``diffusion-push``, ``ar-push``) rolls each
window's actions out open loop from its first frame, with the (up to 3) frames and actions
before it as context, as video world models are usually scored
(``cosmos_env.eval.compare``). Start 0 is the env's case: one frame, padded context.
A model with a state track starts it from MuJoCo's states of those frames (both worlds
start identical); ``<backend>.frames_only_start0`` scores start 0 again with the state read
from the first frame by the probe, the case of a user who has frames only.
Writes fidelity.json (per backend over all starts, e.g. ``diffusion.psnr_h16`` beside
``ar.psnr_h16``, with per-horizon curves; each start alone under
``<backend>.by_start.<start>``; the AR model's other decoder under
``ar.decoders.<sampler>``), fidelity.md and fidelity.png. ``--sweep-steps`` also scores
the diffusion sampler with 1, 2 and 3 steps (``diffusion.sweep.<steps>``) and the AR
model's parallel decoder with 1, 2, 4 and 8 MaskGIT passes (``ar.sweep.<passes>``). ``--amp``
sets bf16 autocast (default ``auto``: where the CPU has it natively; ``false`` scores the
releases in float32); ``amp`` and ``machine`` record what ran.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cosmos_env.dynamics.release import load_world_model, shipped_world_models
from cosmos_env.eval import report
from cosmos_env.eval.compare import HELD_OUT_SEED, compare, simulate, summarise, window
from cosmos_env.machine import machine_info, machine_line
from cosmos_env.precision import AmpSetting, amp_words, describe_amp

TASK, POLICY, NOISE, HORIZON = "push", "scripted", 0.3, 16
STARTS = (0, 8, 16, 24, 32)  # episodes last 50 steps: every window fits
SWEEP_STEPS = {"diffusion": (1, 2, 3), "ar": (1, 2, 4, 8)}  # sampler steps; MaskGIT passes


def _entry(result: dict) -> dict:
    """A compare result flattened: summary keys at the top, then the rest."""
    rest = {k: result[k] for k in ("sampler", "sampler_steps", "timing", "per_horizon")}
    return result["summary"] | rest


def _steps(entry: dict) -> int:
    return entry["sampler_steps"]


def _label(entry: dict) -> str:
    return f"{entry['sampler']}, {entry['sampler_steps']} step(s)"


def _over_starts(wm, full, seed: int, sampler: str, steps: int, amp: AmpSetting) -> dict:
    """One sampler setting scored on every start's window; curves averaged over starts
    (each start has the same episodes), summary recomputed from them."""
    results = {}
    for start in STARTS:
        truth, history = window(full, start, HORIZON, wm.dynamics.cfg.context)
        results[start] = compare(wm, truth, seed, sampler, steps, amp, history)[0]
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
        probe_start = compare(wm, truth, seed, sampler, steps, amp, history, False)[0]
        entry["frames_only_start0"] = probe_start["summary"]
    return entry


def _score_backend(wm, full, seed: int, sweep: bool, amp: AmpSetting) -> dict:
    """The default sampler's entry; the AR model also scores its other decoder under
    ``decoders.<sampler>`` (MaskGIT-style parallel vs token by token); with ``sweep`` the
    default sampler at each of the backend's ``SWEEP_STEPS`` under ``sweep.<steps>`` (the
    AR model's parallel decoder only: token by token takes no steps)."""
    main = _over_starts(wm, full, seed, wm.sampler, wm.sampler_steps, amp)
    main["checkpoint"] = str(wm.source)
    main["parameters"] = sum(p.numel() for p in wm.dynamics.parameters())
    if wm.discrete:
        other = "autoregressive" if wm.sampler == "parallel" else "parallel"
        alt = _over_starts(wm, full, seed, other, wm.sampler_steps, amp)
        main["decoders"] = {other: alt}
    if sweep and wm.sampler != "autoregressive":
        default = {k: v for k, v in main.items() if k != "decoders"}  # no nesting in the JSON
        main["sweep"] = {
            str(n): default
            if n == wm.sampler_steps
            else _over_starts(wm, full, seed, wm.sampler, n, amp)
            for n in SWEEP_STEPS[wm.backend]
        }
    return main


def run(
    checkpoints: list[str], episodes: int, seed: int, sweep: bool, amp: AmpSetting = "auto"
) -> dict:
    """Every score of the benchmark, as fidelity.json holds them: one entry per backend
    (``diffusion``, ``ar``), all on the same simulated episodes."""
    models = [load_world_model(c) for c in checkpoints]
    size = models[0].image_size
    full = simulate(TASK, POLICY, NOISE, episodes, max(STARTS) + HORIZON, seed, size)
    results = {
        "machine": machine_info(),
        "amp": describe_amp(amp),
        "task": TASK,
        "policy": POLICY,
        "noise": NOISE,
        "horizon": HORIZON,
        "starts": list(STARTS),
        "held_out_episodes": episodes,
        "seed": seed,
        "backends": [],
    }
    for wm in models:
        backend = wm.backend
        results[backend] = _score_backend(wm, full, seed, sweep, amp)
        results["backends"].append(backend)
    return results


def _rows(results: dict) -> dict[str, dict]:
    """Table rows: every scored variant of every backend, the default marked."""
    rows = {}
    for backend in results["backends"]:
        main = results[backend]
        variants = [main]
        variants += [e for e in main.get("sweep", {}).values() if _steps(e) != _steps(main)]
        variants += [e for s, e in main.get("decoders", {}).items() if s != main["sampler"]]
        for e in sorted(variants, key=lambda e: (e["sampler"], _steps(e))):
            default = e is main
            rows[f"{backend} ({_label(e)}{', default' if default else ''})"] = e
    return rows


def write(results: dict, out: Path) -> str:
    """fidelity.json, fidelity.md, fidelity.png; returns the markdown."""
    rows = _rows(results)
    parts = [
        f"World models vs MuJoCo, {results['task']}: {results['held_out_episodes']} held-out "
        f"episodes (seed {results['seed']}), scripted expert at noise {results['noise']}, open "
        f"loop for {results['horizon']} steps from frames {results['starts']} (the frames "
        "before each start as context). `h16` columns are at h = 16. Precision: "
        f"{amp_words(results['amp'])}. {machine_line(results['machine'])}",
        report.summary_table(rows, "model (sampler, steps)"),
    ]
    for backend in results["backends"]:
        main = results[backend]
        by_start = {s: e for s, e in main["by_start"].items()}
        if "frames_only_start0" in main:
            by_start["0, state from the probe (frames only)"] = main["frames_only_start0"]
        timing = main["timing"]
        speed = timing["world_model_frames_per_s_batched"] / timing["mujoco_frames_per_s"]
        parts += [
            f"### {backend}: `{main['checkpoint']}` ({main['parameters'] / 1e6:.2f}M parameters)",
            "By start frame (default sampler; start 0 = the env's case, one frame of "
            "context; a state track starts from MuJoCo's state unless marked):",
            report.summary_table(by_start, "start frame"),
            f"Default sampler per horizon:\n\n{report.horizon_table(main['per_horizon'])}",
            f"World model (batched over {results['held_out_episodes']} episodes, incl. "
            f"decode) produced frames {speed:.3g}x as fast as MuJoCo (step + render + "
            "expert) in this run.",
        ]
    text = "\n\n".join(parts) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "fidelity.md").write_text(text)
    report.plot_fidelity({k: e["per_horizon"] for k, e in rows.items()}, out / "fidelity.png")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 episodes instead of 64")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument(
        "--checkpoints", nargs="+", default=None, help="default: every shipped push model"
    )
    parser.add_argument("--episodes", type=int, default=None, help="default 64 (8 with --quick)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument(
        "--sweep-steps",
        action="store_true",
        help="also diffusion sampler steps 1, 2, 3 and AR MaskGIT passes 1, 2, 4, 8",
    )
    parser.add_argument("--amp", default="auto", choices=["auto", "true", "false"])
    args = parser.parse_args()
    episodes = args.episodes or (8 if args.quick else 64)
    checkpoints = args.checkpoints or shipped_world_models(f"tabletop-{TASK}")
    results = run(checkpoints, episodes, args.seed, args.sweep_steps, args.amp)
    print(write(results, args.out))


if __name__ == "__main__":
    main()
