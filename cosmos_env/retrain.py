"""``python -m cosmos_env retrain``: reproduce the shipped tabletop-push world model from
nothing in one command: generate the MuJoCo data, train the tokenizer, cache its latents,
train the diffusion dynamics. Each stage's wall time goes to ``out/retrain.json`` and the
dynamics model card; stages whose output is already complete are skipped on a rerun."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cosmos_env.config import GenerateConfig, RetrainConfig, load_config
from cosmos_env.data.store import EpisodeStore, StoreError
from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig
from cosmos_env.generate import generate
from cosmos_env.tokenizer.cache import encode_store
from cosmos_env.tokenizer.data import store_paths
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig


def _generate_stores(cfg: RetrainConfig, data: Path) -> None:
    plan = [("push", n, cfg.push_episodes) for n in cfg.push_noise]
    plan += [("pick_place", n, cfg.pick_place_episodes) for n in cfg.pick_place_noise]
    for i, (task, noise, episodes) in enumerate(plan):
        out = data / f"{task}-noise{noise}.zarr"
        try:
            if EpisodeStore.open(out).n_episodes == episodes:
                continue  # complete from an earlier run
        except StoreError:
            pass  # missing or unfinished: generate (resumes an unfinished store)
        overrides = [f"task={task}", f"noise={noise}", f"episodes={episodes}", f"seed={i}"]
        overrides += [f"out={out}", f"workers={cfg.workers}", f"executor={cfg.executor}"]
        generate(load_config("generate", GenerateConfig, overrides))


def _train_tokenizer(cfg: RetrainConfig, data: Path, out: Path) -> Path:
    release = out / "release"
    if not (release / "config.json").exists():
        overrides = [f"tokenizer={cfg.tokenizer}", f"data={data}", f"out={out}"]
        overrides += [f"max_minutes={cfg.tokenizer_minutes}", f"seed={cfg.seed}"]
        from cosmos_env.tokenizer.train import train_tokenizer

        train_tokenizer(load_config("train_tokenizer", TrainTokenizerConfig, overrides))
    return release


def _train_dynamics(cfg: RetrainConfig, data: Path, tokenizer: Path, out: Path) -> Path:
    release = out / "release"
    if not (release / "config.json").exists():
        overrides = [f"data={data}", f"out={out}", f"max_minutes={cfg.dynamics_minutes}"]
        overrides += [f"tokenizer={tokenizer}", f"seed={cfg.seed}", "stores=push-*"]
        from cosmos_env.dynamics.diffusion.train import train_dynamics

        plain = ("tokenizer",)
        train_dynamics(load_config("train_dynamics", TrainDynamicsConfig, overrides, plain))
    return release


def retrain(cfg: RetrainConfig) -> dict:
    """Run every stage; return the wall time (minutes) of each and the release paths."""
    out = Path(cfg.out)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    minutes: dict[str, float] = {}

    def timed(name: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        minutes[name] = (time.perf_counter() - start) / 60
        print(f"[retrain] {name}: {minutes[name]:.1f} min", flush=True)
        return result

    timed("generate", _generate_stores, cfg, data)
    tokenizer = timed("train_tokenizer", _train_tokenizer, cfg, data, out / "tokenizer")
    model = load_tokenizer(tokenizer)
    timed("encode", lambda: [encode_store(p, model) for p in store_paths(data)])
    dynamics = timed("train_dynamics", _train_dynamics, cfg, data, tokenizer, out / "dynamics")
    summary = {
        "minutes": minutes,
        "total_minutes": sum(minutes.values()),
        "tokenizer": str(tokenizer),
        "dynamics": str(dynamics),
    }
    (out / "retrain.json").write_text(json.dumps(summary, indent=2) + "\n")
    card = dynamics / "card.md"
    card.write_text(
        card.read_text()
        + "- One-command retrain (`python -m cosmos_env retrain`): "
        + ", ".join(f"{k} {v:.1f} min" for k, v in minutes.items())
        + f"; total {summary['total_minutes']:.1f} min\n"
    )
    return summary
