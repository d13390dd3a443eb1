"""``python -m cosmos_env corpus out=DIR``: the diverse pre-training corpus of a world
foundation model, recorded with ``generate`` from every source that ``conf/corpus.yaml``
lists (the randomised tabletop with experts of every quality and play; Gymnasium MuJoCo
envs with random, smooth-random and noisy scripted policies).

Each source writes one store per noise level, side by side in ``out`` (so that
``data=out`` reads them all): ``<source>.noise<n>.zarr``. A killed run re-run with the same
settings keeps the complete stores and resumes the unfinished one. Before anything is
recorded, the held-out targets are checked to be out of reach: no source records a
held-out Gymnasium env, and no tabletop source's scene ranges can draw the held-out
scene's task object (``sim.scene.can_produce``). ``out/corpus.json`` lists every store
with its world, policy, episodes, frames and action and state sizes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmos_env.config import GenerateConfig, load_config, override_value
from cosmos_env.data.store import EpisodeStore


@dataclass
class CorpusSource:
    """One world and policy of the corpus: ``generate``'s settings, with ``noise`` a list
    (one store per level, ``episodes`` split evenly over them)."""

    world: str = "tabletop_random"  # a conf/world option: tabletop_random | gym | ...
    task: str = "push"  # tabletop task (the scene and the expert's goal)
    env_id: str | None = None  # world=gym
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy: str = "scripted"  # scripted | random | play | package.module:factory
    noise: list[float] = field(default_factory=lambda: [0.0])
    episodes: int = 100
    max_steps: int | None = None


@dataclass
class HeldOut:
    """What pre-training never shows: Gymnasium envs, and the task object of a tabletop
    world option (``conf/world/<tabletop_world>.yaml``'s ``scene.task_object``)."""

    env_ids: list[str] = field(default_factory=lambda: ["Walker2d-v5"])
    tabletop_world: str | None = "tabletop_heldout"


@dataclass
class CorpusConfig:
    out: str = "outputs/corpus"
    sources: dict[str, CorpusSource] = field(default_factory=dict)
    held_out: HeldOut = field(default_factory=HeldOut)
    scale: float = 1.0  # times every source's episodes (at least one per store): quick runs
    image_size: int = 64
    workers: int = 0  # generate's processes; 0: one per usable core
    executor: str = "local"  # where generate's episodes run: local | ray
    seed: int = 0


def store_configs(cfg: CorpusConfig) -> dict[str, GenerateConfig]:
    """The ``generate`` config of every store of the corpus, by store file name. Seeds
    differ per store (a hash-free running index), so no two stores repeat an episode."""
    if not cfg.sources:
        raise ValueError("the corpus has no sources; list them under sources: (conf/corpus.yaml)")
    if cfg.scale <= 0:
        raise ValueError(f"scale must be > 0, got {cfg.scale}")
    out, configs, index = Path(cfg.out), {}, 0
    for name, src in cfg.sources.items():
        if not src.noise:
            raise ValueError(f"corpus source {name!r}: noise must list at least one level")
        per_store = max(1, round(src.episodes * cfg.scale / len(src.noise)))
        for noise in src.noise:
            overrides = [f"world={src.world}", f"task={src.task}", f"policy={src.policy}"]
            overrides += [f"noise={noise}", f"episodes={per_store}", f"seed={cfg.seed + index}"]
            overrides += [f"image_size={cfg.image_size}", f"workers={cfg.workers}"]
            overrides += [f"executor={cfg.executor}"]
            overrides += [f"out={out / f'{name}.noise{noise}.zarr'}"]
            if src.env_id is not None:
                overrides.append(f"env_id={src.env_id}")
            if src.max_steps is not None:
                overrides.append(f"max_steps={src.max_steps}")
            overrides += [f"+env_kwargs.{k}={override_value(v)}" for k, v in src.env_kwargs.items()]
            configs[f"{name}.noise{noise}.zarr"] = load_config(
                "generate", GenerateConfig, overrides
            )
            index += 1
    return configs


def check_held_out(cfg: CorpusConfig, configs: dict[str, GenerateConfig]) -> None:
    """Raise ValueError naming the store that would show a held-out target."""
    from cosmos_env.sim.scene import SceneRanges, can_produce

    held_out_object = None
    if cfg.held_out.tabletop_world:
        world = load_config("generate", GenerateConfig, [f"world={cfg.held_out.tabletop_world}"])
        held_out_object = SceneRanges.from_dict(world.world.scene).task_object
        if held_out_object is None:
            raise ValueError(
                f"held_out.tabletop_world={cfg.held_out.tabletop_world} names no "
                "scene.task_object to hold out"
            )
    for store, gen in configs.items():
        if gen.world.name == "gym" and gen.env_id in cfg.held_out.env_ids:
            raise ValueError(f"corpus store {store} records {gen.env_id}, which is held out")
        if gen.world.name == "tabletop" and held_out_object is not None:
            if can_produce(SceneRanges.from_dict(gen.world.scene), held_out_object):
                raise ValueError(
                    f"corpus store {store}: its scene ranges can draw the held-out task "
                    f"object of world={cfg.held_out.tabletop_world}; narrow them"
                )


def _describe(store_path: Path, gen: GenerateConfig) -> dict[str, Any]:
    store = EpisodeStore.open(store_path)
    return {
        "world": store.world,
        "scene": "randomised" if gen.world.scene else "fixed",
        "policy": gen.policy,
        "noise": gen.noise,
        "episodes": store.n_episodes,
        "frames": store.n_frames,
        "action_dim": int(store.action_spec.dim),
        "state_dim": int(store.state_spec.dim),
    }


def build_corpus(cfg: CorpusConfig) -> dict[str, Any]:
    """Record every store of the corpus (complete ones are kept); write and return the
    manifest ``out/corpus.json``: the stores, totals and held-out targets."""
    from cosmos_env.generate import generate_unless_complete

    configs = store_configs(cfg)
    check_held_out(cfg, configs)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stores = {}
    for i, (name, gen) in enumerate(configs.items(), 1):
        print(f"[corpus] {i}/{len(configs)} {name}", flush=True)
        generate_unless_complete(gen)
        stores[name] = _describe(out / name, gen)
    manifest = {
        "stores": stores,
        "episodes": sum(s["episodes"] for s in stores.values()),
        "frames": sum(s["frames"] for s in stores.values()),
        "worlds": sorted({s["world"] for s in stores.values()}),
        "held_out": {
            "env_ids": list(cfg.held_out.env_ids),
            "tabletop_world": cfg.held_out.tabletop_world,
        },
        "seconds_this_run": time.perf_counter() - start,
    }
    (out / "corpus.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
