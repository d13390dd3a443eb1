"""``python -m cosmos_env generate``: roll a policy out in a world with a simulator (a
tabletop task or any Gymnasium MuJoCo env, built by ``sim.worlds.build_world``) and write
the episodes to an episode store, with the world's StateSpec and description, with worker
processes, deterministic under its seed, and resumable after an interruption.
``synthesize`` does the same in a world model: synthetic data, marked so in the store's attrs.

Policies: ``scripted`` (the tabletop task's expert, or a Gymnasium env's from
``sim.gym_experts``, degraded by ``noise``), ``random``, ``play`` (goal-free motion from
``sim.play``: random gripper targets on the tabletop, smooth random actions elsewhere),
or ``package.module:factory``: ``factory(env)`` returns an object with
``act(obs, info) -> action`` (and optionally ``reset(seed=...)``, called before each
episode) or a plain callable ``(obs, info) -> action``, the action in the env's action
space. ``info["state"]`` is the recorded state in every world.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from cosmos_env.config import GenerateConfig, SynthesizeConfig
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.store import EpisodeStore, IncompleteStoreError, StoreError
from cosmos_env.executors import WorkerLost, check_executor, make_executor
from cosmos_env.generate_policies import (
    BUILT_IN_POLICIES,
    check_policy,
    episode_policy,
    user_policy,
)
from cosmos_env.guardrails.faces import guard_frames
from cosmos_env.machine import default_workers
from cosmos_env.sim.recorder import EpisodeRecorder, action_spec_of, features_for, state_spec_of
from cosmos_env.sim.tasks import get_task
from cosmos_env.sim.worlds import build_world

_worker: dict = {}  # per-process env, recorder, episode buffer and policy


def episode_seed(base_seed: int, index: int) -> int:
    """Seed of episode ``index``: independent of worker count and of resumption."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def make_world_env(cfg: GenerateConfig, world: Any = None) -> gym.Env:
    """The env that ``cfg`` records: ``build_world(cfg).make_env`` (a tabletop task or a
    Gymnasium MuJoCo env; ``world`` if already built), or synthesize's world-model env."""
    kwargs = {} if cfg.max_steps is None else {"max_episode_steps": cfg.max_steps}
    if isinstance(cfg, SynthesizeConfig):
        return _world_model_env(cfg, kwargs)
    world = world if world is not None else build_world(cfg)
    if cfg.world.name == "tabletop":  # gym envs get env_kwargs from their world
        kwargs = {
            "terminate_on_success": cfg.world.terminate_on_success,
            **cfg.env_kwargs,
            **kwargs,
        }
    return world.make_env(cfg.image_size, **kwargs)


def _world_model_env(cfg: SynthesizeConfig, kwargs: dict) -> gym.Env:
    """The world-model env of ``cfg.task``: the same spaces, reward and time limit as the
    MuJoCo task, frames and state predicted."""
    from cosmos_env.registration import WORLD_MODEL_IDS

    env_ids = {world: env_id for env_id, (world, _) in WORLD_MODEL_IDS.items()}
    tasks = [w.removeprefix("tabletop-") for w in env_ids if w.startswith("tabletop-")]
    world = f"tabletop-{cfg.task}"
    if cfg.world.name != "tabletop" or world not in env_ids:
        raise ValueError(
            f"synthesize needs a world model of the task: world=tabletop and task in "
            f"{tasks}, got world={cfg.world.name} task={cfg.task}"
        )
    return gym.make(
        env_ids[world],
        backend=cfg.backend,
        checkpoint=cfg.checkpoint,
        sampler_steps=cfg.sampler_steps,
        reset_source=cfg.reset_source,
        terminate_on_success=cfg.world.terminate_on_success,
        **kwargs,
    )


def _with_state(env: gym.Env, info: dict) -> dict:
    """``info`` with ``"state"`` (the recorded state) for every world: a Gymnasium MuJoCo
    env's ``concat(qpos, qvel)`` where its info has none."""
    data = getattr(env.unwrapped, "data", None)
    if "state" in info or data is None or not hasattr(data, "qpos"):
        return info
    return {**info, "state": np.concatenate([data.qpos, data.qvel]).astype(np.float32)}


def _init_worker(cfg: GenerateConfig) -> None:
    env = make_world_env(cfg)
    buffer: list = []
    instruction = ""
    if cfg.world.name == "tabletop":
        instruction = get_task(cfg.task).instruction
    source = cfg.env_id if cfg.world.name == "gym" else f"tabletop-{cfg.task}"
    if isinstance(cfg, SynthesizeConfig):
        source = f"world-model-{cfg.backend}-{cfg.task}"
    recorder = EpisodeRecorder(
        env,
        lambda ep, instr, src: buffer.append((ep, instr, src)),
        cfg.image_size,
        instruction,
        source,
    )
    policy = None if cfg.policy in BUILT_IN_POLICIES else user_policy(cfg, recorder)
    _worker.update(cfg=cfg, env=recorder, buffer=buffer, source=source, policy=policy)


def _run_episode(index: int) -> tuple[dict[str, np.ndarray], str, str]:
    cfg: GenerateConfig = _worker["cfg"]
    env: EpisodeRecorder = _worker["env"]
    seed = episode_seed(cfg.seed, index)
    obs, info = env.reset(seed=seed)
    act = episode_policy(cfg, env, seed, _worker["policy"])
    done = False
    while not done:
        action = act(obs, _with_state(env, info))
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    episode, instruction, _ = _worker["buffer"].pop()
    if isinstance(cfg, SynthesizeConfig) and cfg.guard:  # frames out of a world model
        episode["rgb"] = guard_frames(episode["rgb"])
    return episode, instruction, f"{_worker['source']}/ep{index:06d}"


def _open_or_create(cfg: GenerateConfig) -> EpisodeStore:
    out = Path(cfg.out)
    settings = _settings(cfg)
    synthetic = isinstance(cfg, SynthesizeConfig)
    command = "synthesize" if synthetic else "generate"
    if out.exists() and not cfg.overwrite:
        try:
            store = EpisodeStore.open(out, "r")
        except IncompleteStoreError:
            store = EpisodeStore.open(out, "a")
            _check_resume(out, store, store.attrs["extra"].get(command) or {}, settings, cfg)
            return store  # resume: seeds depend on the episode index only
        raise StoreError(f"{out} already holds a complete store; pass overwrite=true to replace it")
    world = None if synthetic else build_world(cfg)
    env = make_world_env(cfg, world)
    try:
        features = features_for(env, cfg.image_size)
        spec = action_spec_of(env)
        state_spec = _state_spec(env, synthetic)
        fps = float(env.metadata.get("render_fps") or 1.0 / env.unwrapped.dt)
        robot = "floating parallel-jaw gripper" if cfg.world.name == "tabletop" else cfg.env_id
        attrs = {command: settings, "synthetic": synthetic}
        name = world.name if world is not None else env.unwrapped.core.wm.world.name
        if synthetic:  # which model made the frames, so nobody mistakes them for MuJoCo's
            wm = env.unwrapped.core.wm
            attrs["world_model"] = {
                "backend": wm.backend,
                "checkpoint": wm.source.name,
                "tokenizer": wm.tokenizer.cfg.name,
                "tokenizer_checksum": wm.tokenizer.checksum,
            }
    finally:
        env.close()
    view = "front" if cfg.world.name == "tabletop" else str(cfg.camera or "default")
    camera = {"name": view, "height": cfg.image_size, "width": cfg.image_size}
    return EpisodeStore.create(
        out,
        features=features,
        action_spec=spec,
        fps=fps,
        world=name,  # the World's name (tabletop-push, gym:Reacher-v5): releases carry it
        camera=camera,
        robot=robot,
        attrs=attrs,
        overwrite=cfg.overwrite,
        state_spec=state_spec,
        world_description=None if world is None else world.describe(),
    )


def _settings(cfg: GenerateConfig) -> dict:
    """What the store's attrs record of ``cfg`` (and a resume compares): all but the
    episode count, where the episodes ran (executor, workers) and overwrite, which leave
    the store the same. An empty ``world.scene`` (the fixed scene) is left out, so that
    these attrs read as they did before scenes could be randomised."""
    settings = {
        k: v
        for k, v in asdict(cfg).items()
        if k not in ("episodes", "executor", "workers", "overwrite")
    }
    if not settings["world"].get("scene", True):
        del settings["world"]["scene"]
    return settings


def _state_spec(env: gym.Env, synthetic: bool) -> StateSpec | None:
    """The recorded state's spec; a world-model env's own spec, if it has one."""
    if not synthetic:
        return state_spec_of(env)
    spec = getattr(env.unwrapped, "state_spec", None)
    return spec if isinstance(spec, StateSpec) else None


def _check_resume(
    out: Path, store: EpisodeStore, before: dict, settings: dict, cfg: GenerateConfig
) -> None:
    """Refuse to resume an unfinished store made with other settings (naming each one) or
    holding more episodes than asked for. A setting that the store's writer did not know
    (a field added since) counts as that field's default."""
    defaults = {
        f.name: f.default_factory() if callable(f.default_factory) else f.default
        for f in fields(cfg)
    }
    before = {
        **{k: defaults[k] for k in settings.keys() - before.keys() if k in defaults},
        **before,
    }
    changed = [
        f"{key}={before.get(key)!r} (now {settings.get(key)!r})"
        for key in sorted(before.keys() | settings.keys())
        if before.get(key) != settings.get(key)
    ]
    if changed:
        raise StoreError(
            f"{out} holds an unfinished store made with other settings: {', '.join(changed)}; "
            "resume with the same settings, or pass overwrite=true to start again"
        )
    if store.n_episodes > cfg.episodes:
        raise StoreError(
            f"{out} already holds {store.n_episodes} committed episodes, more than "
            f"episodes={cfg.episodes}; ask for at least {store.n_episodes} to resume, or pass "
            "overwrite=true to start again"
        )


def generate_unless_complete(cfg: GenerateConfig) -> dict:
    """`generate`, except that a complete store of ``cfg.episodes`` episodes made with the
    same settings is kept as it is (``{"out", "episodes", "kept": True}``): what the
    multi-store commands (make-world-model, corpus) re-run after an interruption. A
    complete store made with other settings, or of another length, raises StoreError."""
    try:
        store = EpisodeStore.open(cfg.out, "r")
    except StoreError:
        return generate(cfg)  # missing or unfinished: generate creates or resumes it
    if cfg.overwrite:
        return generate(cfg)
    made_with = store.attrs["extra"].get("generate") or {}
    _check_resume(Path(cfg.out), store, made_with, _settings(cfg), cfg)
    if store.n_episodes != cfg.episodes:
        raise StoreError(
            f"{cfg.out} is a complete store of {store.n_episodes} episodes, not "
            f"{cfg.episodes}; pass overwrite=true to make it again"
        )
    return {"out": str(store.path), "episodes": store.n_episodes, "kept": True}


MAX_RESTARTS = 3  # worker deaths one run survives (Mesa's software renderer can segfault)


def _episodes(cfg: GenerateConfig, todo: range, workers: int):
    """(episode, instruction, source id) of each index in ``todo``, in order, from
    ``workers`` workers of ``cfg.executor`` (local: this process, or spawned processes;
    ray: Ray actors). A worker that dies (a crash in the renderer, the OOM killer) raises
    WorkerLost here instead of hanging the run."""
    executor = make_executor(cfg.executor, workers)
    yield from executor.map(_run_episode, todo, _init_worker, (cfg,))


def _restart_or_raise(cfg: GenerateConfig, committed: int, restarts: int, error) -> None:
    """After a worker died: go on from the committed episodes (each episode's seed depends
    on its index only, so the store is the same), or give up after ``MAX_RESTARTS``."""
    if restarts > MAX_RESTARTS:
        raise RuntimeError(
            f"generate {cfg.out}: a worker process died {restarts} times ({error}); the "
            f"{committed} episodes written are kept, and re-running resumes from there"
        ) from error
    warnings.warn(
        f"generate {cfg.out}: a worker process died ({error}); restarting the workers from "
        f"episode {committed} ({restarts}/{MAX_RESTARTS})",
        RuntimeWarning,
        stacklevel=3,
    )


def generate(cfg: GenerateConfig) -> dict:
    """Write ``cfg.episodes`` episodes to ``cfg.out``; return a summary with frames/s."""
    check_policy(cfg)
    check_executor(cfg.executor)  # an unknown name or a missing Ray fails before the store
    if cfg.episodes < 1 or cfg.workers < 0:
        raise ValueError(
            f"need episodes >= 1 and workers >= 0 (0: one per core), got {cfg.episodes}, "
            f"{cfg.workers}"
        )
    store = _open_or_create(cfg)
    workers = cfg.workers or default_workers(cfg.episodes - store.n_episodes)
    start = time.perf_counter()
    frames, restarts = 0, 0
    desc = "synthesize" if isinstance(cfg, SynthesizeConfig) else "generate"
    with tqdm(total=cfg.episodes, initial=store.n_episodes, desc=desc, unit="ep") as bar:
        while store.n_episodes < cfg.episodes:
            todo = range(store.n_episodes, cfg.episodes)
            try:
                for episode, instruction, source in _episodes(cfg, todo, workers):
                    store.append_episode(episode, instruction, source)
                    frames += len(episode["rgb"])
                    bar.update()
            except WorkerLost as e:
                restarts += 1
                _restart_or_raise(cfg, store.n_episodes, restarts, e)
    elapsed = time.perf_counter() - start
    store.finalize()
    return {
        "out": str(store.path),
        "episodes": store.n_episodes,
        "frames": store.n_frames,
        "frames_generated": frames,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed if elapsed > 0 else float("nan"),
        "bytes_per_frame": store.bytes_stored("rgb") / store.n_frames,
        "raw_bytes_per_frame": store.raw_bytes("rgb") / store.n_frames,
    }
