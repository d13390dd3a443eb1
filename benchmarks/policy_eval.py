"""Does the world model rank policies the way MuJoCo does?

    python benchmarks/policy_eval.py [--quick] [--out DIR] [--suite YAML] [--backends ...]
        [--diffusion-checkpoint DIR] [--ar-checkpoint DIR] [--executor local|ray] [--workers N]

Every policy of the suite (``benchmarks/policy_suite.yaml``: scripted experts at five noise
levels, behaviour cloning at three checkpoints, CEM-MPC, random) runs N episodes from the
same initial states in MuJoCo and in each world-model backend (the shipped checkpoints, or
the releases given; the CEM planner imagines with the diffusion backend's model). Each
policy is an independent job: ``--workers N`` runs N at a time, in spawned processes
(``--executor local``, the default; one worker: this process) or on Ray actors
(``--executor ray``; ``RAY_ADDRESS`` joins a cluster), with the same results.
Writes ``DIR/policy_eval.json``: per backend ``pearson``, ``spearman``, ``mmrv``,
``n_policies`` over the whole suite and under ``subsets`` (without the planner; the
privileged-state policies only), and per policy the success rate with its 95% Wilson
interval and the mean return in every world; ``DIR/policy_eval.md`` (tables) and
``DIR/policy_eval.png`` (world model vs MuJoCo success, one panel per backend).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.policy_ranking import mmrv, pearson, spearman, wilson_interval
from cosmos_env.executors import EXECUTORS, check_executor
from cosmos_env.machine import machine_info, machine_line
from cosmos_env.precision import AmpSetting, amp_words, describe_amp
from policies.evaluate import EpisodeResults, Suite, evaluate_policies

SUITE = Path(__file__).with_name("policy_suite.yaml")
BACKENDS = ("diffusion", "ar")
POLICY_SEED = 7  # the policies' own randomness (noise, CEM samples), the same in every world


def outcome(results: EpisodeResults) -> dict:
    """Success rate with its 95% Wilson interval, mean return, wall time."""
    wins, n = int(results.success.sum()), len(results.success)
    return {
        "success_rate": results.success_rate,
        "ci95": list(wilson_interval(wins, n)),
        "mean_return": float(results.returns.mean()),
        "seconds": round(results.seconds, 2),
    }


def agreement(per_policy: dict, backend: str) -> dict:
    """Pearson, Spearman and MMRV of one backend's success rates against MuJoCo's."""
    names = list(per_policy)
    sim = [per_policy[n][backend]["success_rate"] for n in names]
    real = [per_policy[n]["mujoco"]["success_rate"] for n in names]
    return {
        "pearson": pearson(sim, real),
        "spearman": spearman(sim, real),
        "mmrv": mmrv(sim, real),
        "n_policies": len(names),
        "mean_abs_success_gap": float(np.mean(np.abs(np.subtract(sim, real)))),
    }


# Subsets scored beside the whole suite. A planner scored in the model it plans with is
# not an independent verdict (it optimises against that model's mistakes); frame-based
# policies also test how the frames look, privileged ones only the predicted state.
SUBSETS = {
    "without_planner": lambda spec: spec["kind"] != "cem",
    "privileged_state": lambda spec: spec["kind"] in ("scripted", "random"),
}


def subset_agreement(per_policy: dict, backend: str) -> dict:
    """``agreement`` over each of ``SUBSETS`` (skipped when fewer than two policies)."""
    scores = {}
    for name, keep in SUBSETS.items():
        chosen = {k: v for k, v in per_policy.items() if keep(v["spec"])}
        if len(chosen) >= 2:
            scores[name] = agreement(chosen, backend) | {"policies": list(chosen)}
    return scores


def evaluate_suite(
    suite: dict,
    episodes: int,
    backends: list[str],
    checkpoints: dict | None = None,
    amp: AmpSetting = "auto",
    executor: str = "local",
    workers: int = 1,
) -> dict:
    """Run the suite; the JSON-ready results. ``checkpoints`` maps a backend to the release
    it runs instead of its shipped one; ``amp`` is the world-model envs' setting. The
    policies run as independent jobs on ``workers`` workers of ``executor`` (local with
    one worker: one after another in this process)."""
    task = suite["task"]
    seed, checkpoints = int(suite["seed"]), checkpoints or {}
    runs = Suite(task, episodes, seed, tuple(backends), checkpoints, POLICY_SEED, amp)
    world_models = runs.world_models()  # here too: a bad checkpoint fails before any job
    specs = [dict(spec) for spec in suite["policies"]]
    per_policy: dict[str, dict] = {}
    jobs = evaluate_policies(runs, specs, executor, workers)
    for spec, (name, worlds) in zip(specs, jobs, strict=True):
        entry = {"spec": spec} | {world: outcome(run) for world, run in worlds.items()}
        per_policy[name] = entry
        print(name, {k: v["success_rate"] for k, v in entry.items() if k != "spec"})
    results = {"task": task, "episodes": episodes, "seed": suite["seed"], "backends": backends}
    results["checkpoints"] = {b: str(wm.source) for b, wm in world_models.items()}
    results["policies"] = per_policy
    for backend in backends:
        results[backend] = agreement(per_policy, backend)
        results[backend]["subsets"] = subset_agreement(per_policy, backend)
    return results


def markdown(results: dict) -> str:
    worlds = ["mujoco", *results["backends"]]
    rows = []
    for name, entry in results["policies"].items():
        cells = [name]
        for world in worlds:
            o = entry[world]
            low, high = o["ci95"]
            cells.append(f"{o['success_rate']:.2f} [{low:.2f}, {high:.2f}]")
        cells += [entry[w]["mean_return"] for w in worlds]
        rows.append(cells)
    header = ["policy", *[f"success {w} (95% CI)" for w in worlds]]
    header += [f"return {w}" for w in worlds]
    text = f"{results['episodes']} episodes per policy and world, task {results['task']}"
    if checkpoints := results.get("checkpoints"):
        text += "; checkpoints: " + ", ".join(f"{b} `{c}`" for b, c in checkpoints.items())
    if "amp" in results:  # what main() ran; evaluate_suite alone leaves both out
        text += f". World models: {amp_words(results['amp'])}. {machine_line(results['machine'])}"
    text += "\n\n"
    text += markdown_table(header, rows) + "\n\n"
    stats = [
        [b, results[b]["n_policies"], results[b]["pearson"], results[b]["spearman"]]
        + [results[b]["mmrv"], results[b]["mean_abs_success_gap"]]
        for b in results["backends"]
    ]
    for b in results["backends"]:
        for name, sub in results[b].get("subsets", {}).items():
            stats.append(
                [f"{b}, {name.replace('_', ' ')}", sub["n_policies"], sub["pearson"]]
                + [sub["spearman"], sub["mmrv"], sub["mean_abs_success_gap"]]
            )
    head = ["backend (policies)", "n", "Pearson r", "Spearman rho", "MMRV", "mean |gap|"]
    return text + markdown_table(head, stats) + "\n"


def plot(results: dict, path: Path) -> Path:
    """World-model vs MuJoCo success rate per policy (95% intervals), one panel per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = results["backends"]
    fig, axes = plt.subplots(1, len(backends), figsize=(5 * len(backends), 4.8), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=True):
        for name, entry in results["policies"].items():
            real, sim = entry["mujoco"], entry[backend]
            x, y = real["success_rate"], sim["success_rate"]
            xerr = [[x - real["ci95"][0]], [real["ci95"][1] - x]]
            yerr = [[y - sim["ci95"][0]], [sim["ci95"][1] - y]]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=name)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        stats = results[backend]
        ax.set_title(
            f"{backend}: r={stats['pearson']:.2f}, rho={stats['spearman']:.2f}, "
            f"MMRV={stats['mmrv']:.3f}"
        )
        ax.set_xlabel("success rate in MuJoCo")
        ax.set_ylabel(f"success rate in the {backend} world model")
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the suite's quick_episodes")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--episodes", type=int, default=None, help="override the suite's")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    for backend in BACKENDS:
        parser.add_argument(
            f"--{backend}-checkpoint", type=Path, default=None, help="default: the shipped one"
        )
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "true", "false"],
        help="bf16 autocast of the world-model envs (auto: where the CPU has it natively)",
    )
    parser.add_argument(
        "--executor", default="local", choices=EXECUTORS, help="where the policies' jobs run"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="policies at a time (1: in this process)"
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    check_executor(args.executor)  # without Ray installed, fail before loading anything
    checkpoints = {b: getattr(args, f"{b}_checkpoint") for b in BACKENDS}
    if missing := [b for b, path in checkpoints.items() if path and b not in args.backends]:
        parser.error(f"a checkpoint is given for {missing}, which --backends leaves out")
    torch.manual_seed(0)
    suite = OmegaConf.to_container(OmegaConf.load(args.suite))
    episodes = args.episodes or suite["quick_episodes" if args.quick else "episodes"]
    start = time.perf_counter()
    results = {"machine": machine_info(), "amp": describe_amp(args.amp)}
    results |= evaluate_suite(
        suite, episodes, args.backends, checkpoints, args.amp, args.executor, args.workers
    )
    results["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "policy_eval.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "policy_eval.md").write_text(markdown(results))
    plot(results, args.out / "policy_eval.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
