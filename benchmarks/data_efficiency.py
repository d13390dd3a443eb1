"""Does pre-training pay? ``benchmarks/data_efficiency.py [--quick] --out DIR [--base NAME]``
writes ``DIR/data_efficiency.json``, ``.md`` and ``.png``.

For each held-out target (never in the pre-training corpus: the tabletop scene with an
object shape and colours pre-training never showed, on the push task; the Gymnasium env the
corpus leaves out) and each post-training set of 10, 30, 100 and 300 episodes recorded in
its simulator (one store; 10% of it, at least one episode, is held out for training's own
evaluation, the same for both models), two world models are made with ``make-world-model``
for the same training minutes: one post-trained from the base (``base=``), one trained
from scratch with the base's tokenizer and network size. Each is scored on held-out
episodes (seeds no store uses) against the simulator under the same actions
(``cosmos_env.eval.compare``): PSNR at h1, mean h1-16, h16, copy-last h16 and their gain,
reward Pearson and the state error at h16; on the tabletop target also the policy-ranking
Pearson of a graded suite (the expert at five noise levels and the zero action,
``world_ranking.rank``).

Keys: ``<target>.<post|scratch>_<episodes>.<metric>``. The JSON is rewritten after every
model, and a re-run into the same DIR with the same settings (base, minutes, episodes
scored) keeps the models already scored: a killed sweep goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from world_ranking import rank

from cosmos_env.config import MakeWorldModelConfig, load_config, override_value
from cosmos_env.dynamics.diffusion.base import load_base
from cosmos_env.dynamics.release import load_world_model
from cosmos_env.eval.compare import HELD_OUT_SEED, compare, world_of
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.simulate import simulate
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.make_world_model import make_world_model

HORIZON = 16
KEYS = ("psnr_h1", "psnr_mean_h1_16", "psnr_h16", "copy_last_psnr_h16", "gain_h16_db")
KEYS += ("reward_pearson", "state_std_err_h16")


@dataclass(frozen=True)
class Target:
    """A held-out world: how make-world-model records it, how it is scored."""

    record: tuple[str, ...]  # make-world-model overrides (world, task or env, policy, noise)
    policy: str  # the held-out episodes' policy (simulate's names)
    noise: float = 0.5
    ranking: bool = False  # score the graded suite's policy ranking too
    note: str = field(default="", compare=False)


TARGETS = {
    "tabletop_heldout_push": Target(
        ("world=tabletop_heldout", "task=push", "policy=scripted"),
        "scripted",
        ranking=True,
        note="a capsule in a hue band the corpus never draws (conf/world/tabletop_heldout)",
    ),
    "walker2d": Target(
        ("world=gym", "env_id=Walker2d-v5", "policy=play", "max_steps=64"),
        "play",
        note="Walker2d-v5, left out of conf/corpus.yaml; smooth random play",
    ),
}
# One store per set, so that the per-store train/val split holds out only 10% (at least one
# episode) for training's own evaluation; the expert at noise 0.5 replaces half its actions
# by random ones, so the set spans expert and random motion.
SCRIPTED_NOISE = "noise=[0.5]"


def _make(target: Target, out: Path, episodes: int, minutes: float, base, post: bool) -> Path:
    """One world model of ``target`` from ``episodes`` episodes: post-trained from
    ``base``, or from scratch with its tokenizer and network size (the post-trained run's
    ``data`` is recorded once and shared). The budget, not a step count, ends training."""
    post_out = out / f"post_{episodes}"
    overrides = [*target.record, f"out={post_out if post else out / f'scratch_{episodes}'}"]
    overrides += [f"budget_minutes={minutes}", f"episodes={episodes}"]
    overrides.append(SCRIPTED_NOISE if target.policy == "scripted" else "noise=[0.0]")
    if target.record[0] == "world=gym":  # locomotion keeps going after a fall
        overrides.append("+env_kwargs.terminate_when_unhealthy=false")
    dynamics = ["steps=1000000"]
    # The same CPU minutes for both: no state-track refit after the budget (a post-trained
    # release keeps its joint track anyway).
    overrides.append("state_refit=null")
    if post:
        overrides.append(f"base={base.directory}")
    else:
        overrides += [f"data={post_out / 'data'}", f"tokenizer={base.tokenizer['source']}"]
        overrides.append("tokenizer_min_psnr=0")  # the base's tokenizer as it is
        net = asdict(base.cfg.net)
        dynamics += [f"dynamics.net.{k}={override_value(v)}" for k, v in net.items()]
    overrides.append("dynamics_overrides=[" + ",".join(f'"{d}"' for d in dynamics) + "]")
    cfg = load_config("make_world_model", MakeWorldModelConfig, overrides, ("tokenizer",))
    return Path(make_world_model(cfg)["release"])


def score(release: Path, target: Target, episodes: int, rank_episodes: int) -> dict:
    """Held-out fidelity, reward and state agreement (and the policy ranking) of a release."""
    wm = load_world_model(release)
    world = world_of(wm)
    truth = simulate(
        world, target.policy, target.noise, episodes, HORIZON, HELD_OUT_SEED, wm.image_size
    )
    result, _ = compare(wm, truth, HELD_OUT_SEED, wm.sampler, wm.sampler_steps, world=world)
    summary = result["summary"]
    row = {k: float(summary[k]) for k in KEYS if k in summary}
    row["gain_h16_db"] = row["psnr_h16"] - row["copy_last_psnr_h16"]
    if target.ranking and rank_episodes:
        ranking = rank(wm, rank_episodes)
        row["ranking_pearson"] = float(ranking["success"]["pearson"])
        row["ranking_return_pearson"] = float(ranking["return"]["pearson"])
    return row


def table(results: dict) -> str:
    header = ["target", "episodes", "model", "PSNR h1", "mean h1-16", "h16", "copy-last h16"]
    header += ["gain h16", "reward r", "state err h16", "ranking r"]
    rows = []
    for target, runs in results["targets"].items():
        for name, r in runs.items():
            kind, episodes = name.split("_")
            cells = [r.get(k, "-") for k in KEYS] + [r.get("ranking_pearson", "-")]
            rows.append([target, int(episodes), kind, *cells])
    return markdown_table(header, rows)


def plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = results["targets"]
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 3.6), squeeze=False)
    for ax, (target, runs) in zip(axes[0], targets.items(), strict=True):
        for kind, style in (("post", "o-"), ("scratch", "s--")):
            points = sorted(
                (int(n.split("_")[1]), r["gain_h16_db"])
                for n, r in runs.items()
                if n.startswith(kind)
            )
            if points:
                ax.plot(*zip(*points, strict=True), style, label=f"{kind}-trained")
        ax.set_xscale("log")
        ax.set_xlabel("post-training episodes")
        ax.set_ylabel("PSNR gain over copy-last at h16 (dB)")
        ax.set_title(target)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


SETTINGS = ("quick", "base", "minutes_per_model", "eval_episodes", "rank_episodes")


def earlier_runs(out: Path, results: dict) -> dict:
    """The scored models of an earlier run into ``out`` with the same settings, by target
    (a killed sweep re-run goes on); nothing when there is none or its settings differ."""
    path = out / "data_efficiency.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    if any(old.get(key) != results[key] for key in SETTINGS):
        print(f"[data_efficiency] {path} has other settings: starting over", flush=True)
        return {}
    return old.get("targets", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 30 episodes, 1 min each")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument("--base", default="base-64", help="a shipped base or a base release")
    parser.add_argument("--episodes", default=None, help="comma-separated, default 10,30,100,300")
    parser.add_argument("--minutes", type=float, default=None, help="per model (default 8)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--eval-episodes", type=int, default=None, help="default 32 (quick: 4)")
    parser.add_argument("--rank-episodes", type=int, default=None, help="default 20 (quick: 4)")
    args = parser.parse_args()
    set_torch_threads()
    default = "10,30" if args.quick else "10,30,100,300"
    counts = [int(n) for n in (args.episodes or default).split(",")]
    minutes = args.minutes or (1.0 if args.quick else 8.0)
    eval_episodes = args.eval_episodes or (4 if args.quick else 32)
    rank_episodes = args.rank_episodes or (4 if args.quick else 20)
    base = load_base(args.base)
    out = Path(args.out)
    work = out / "data_efficiency_runs"
    results: dict = {"quick": args.quick, "machine": machine_info(), "base": base.reference()}
    results |= {"minutes_per_model": minutes, "eval_episodes": eval_episodes}
    results |= {"rank_episodes": rank_episodes, "targets": {}}
    done = earlier_runs(out, results)
    for name in args.targets.split(","):
        target, runs = TARGETS[name], {}
        results["targets"][name] = runs
        for n in counts:
            for kind in ("post", "scratch"):
                if f"{kind}_{n}" in done.get(name, {}):
                    runs[f"{kind}_{n}"] = done[name][f"{kind}_{n}"]
                    print(f"[data_efficiency] {name}: {kind} from {n}: scored before", flush=True)
                    continue
                print(f"[data_efficiency] {name}: {kind} from {n} episodes", flush=True)
                release = _make(target, work / name, n, minutes, base, kind == "post")
                runs[f"{kind}_{n}"] = score(release, target, eval_episodes, rank_episodes)
                _write(results, out)
    _write(results, out)
    print((out / "data_efficiency.md").read_text())


def _write(results: dict, out: Path) -> None:
    """The JSON, table and curve so far (a long run shows its progress)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_efficiency.json").write_text(json.dumps(results, indent=2) + "\n")
    notes = "; ".join(f"{k}: {TARGETS[k].note}" for k in results["targets"])
    text = (
        f"Post-trained from base {results['base']['source']} vs from scratch, "
        f"{results['minutes_per_model']} training minutes each, scored on "
        f"{results['eval_episodes']} held-out episodes per model ({notes}).\n\n"
        f"{table(results)}\n\n{machine_line(results['machine'])}\n"
    )
    (out / "data_efficiency.md").write_text(text)
    if any(results["targets"].values()):
        plot(results, out / "data_efficiency.png")


if __name__ == "__main__":
    main()
