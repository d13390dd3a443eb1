"""``python -m cosmos_env generate``: roll a policy out in a MuJoCo world and write the
episodes to an episode store, with worker processes, deterministic under its seed, and
resumable after an interruption. ``synthesize`` does the same in a world model: synthetic
data, marked so in the store's attrs."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from cosmos_env.config import GenerateConfig, SynthesizeConfig
from cosmos_env.data.store import EpisodeStore, IncompleteStoreError, StoreError
from cosmos_env.machine import default_workers, share_cores
from cosmos_env.sim.recorder import EpisodeRecorder, action_spec_of, features_for
from cosmos_env.sim.tasks import get_task

_worker: dict = {}  # per-process env, recorder and episode buffer


def episode_seed(base_seed: int, index: int) -> int:
    """Seed of episode ``index``: independent of worker count and of resumption."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


def make_world_env(cfg: GenerateConfig) -> gym.Env:
    """The env that ``cfg`` records: a tabletop task or a Gymnasium MuJoCo env."""
    import cosmos_env  # noqa: F401  (registers the tabletop ids)
    from cosmos_env.registration import TASK_IDS

    kwargs = {} if cfg.max_steps is None else {"max_episode_steps": cfg.max_steps}
    if isinstance(cfg, SynthesizeConfig):
        return _world_model_env(cfg, kwargs)
    if cfg.world.name == "tabletop":
        if cfg.task not in TASK_IDS:
            raise ValueError(
                f"unknown tabletop task {cfg.task!r}; choose one of {sorted(TASK_IDS)}"
            )
        return gym.make(
            f"cosmos_env/Tabletop-{TASK_IDS[cfg.task]}-v0",
            image_size=cfg.image_size,
            n_objects=cfg.world.n_objects,
            terminate_on_success=cfg.world.terminate_on_success,
            **kwargs,
        )
    if cfg.world.name == "gym":
        if not cfg.env_id:
            raise ValueError("world=gym needs env_id=<Gymnasium id>, e.g. env_id=Pusher-v5")
        env = gym.make(
            cfg.env_id,
            render_mode="rgb_array",
            width=cfg.image_size,
            height=cfg.image_size,
            **kwargs,
        )
        model = getattr(env.unwrapped, "model", None)
        if model is not None:
            model.vis.quality.shadowsize = 0  # shadows cost ~5x render time on llvmpipe
        return env
    raise ValueError(f"unknown world {cfg.world.name!r}; choose tabletop or gym")


def _world_model_env(cfg: SynthesizeConfig, kwargs: dict) -> gym.Env:
    """The world-model env of ``cfg.task``: the same spaces, reward and time limit as the
    MuJoCo task, frames and state predicted."""
    from cosmos_env.registration import TASK_IDS, WORLD_MODEL_TASKS

    if cfg.world.name != "tabletop" or cfg.task not in WORLD_MODEL_TASKS:
        raise ValueError(
            f"synthesize needs a world model of the task: world=tabletop and task in "
            f"{list(WORLD_MODEL_TASKS)}, got world={cfg.world.name} task={cfg.task}"
        )
    return gym.make(
        f"cosmos_env/WorldModel-Tabletop-{TASK_IDS[cfg.task]}-v0",
        backend=cfg.backend,
        checkpoint=cfg.checkpoint,
        sampler_steps=cfg.sampler_steps,
        reset_source=cfg.reset_source,
        terminate_on_success=cfg.world.terminate_on_success,
        **kwargs,
    )


def _check_policy(cfg: GenerateConfig) -> None:
    if cfg.policy not in ("scripted", "random"):
        raise ValueError(f"unknown policy {cfg.policy!r}; choose scripted or random")
    if cfg.policy == "scripted" and cfg.world.name != "tabletop":
        raise ValueError("policy=scripted needs world=tabletop; use policy=random for gym envs")


def _init_worker(cfg: GenerateConfig) -> None:
    env = make_world_env(cfg)
    buffer: list = []
    instruction = ""
    if cfg.world.name == "tabletop":
        instruction = get_task(cfg.task).instruction
    source = cfg.env_id if cfg.world.name == "gym" else f"tabletop-{cfg.task}"
    if isinstance(cfg, SynthesizeConfig):
        source = f"world-model-{cfg.backend}-{cfg.task}"
    _worker.update(
        cfg=cfg,
        env=EpisodeRecorder(
            env,
            lambda ep, instr, src: buffer.append((ep, instr, src)),
            cfg.image_size,
            instruction,
            source,
        ),
        buffer=buffer,
        source=source,
    )


def _init_pool_worker(cfg: GenerateConfig, workers: int) -> None:
    share_cores(workers)  # torch and llvmpipe threads: this worker's share of the cores
    _init_worker(cfg)


def _run_episode(index: int) -> tuple[dict[str, np.ndarray], str, str]:
    from cosmos_env.sim.experts import ScriptedExpert

    cfg: GenerateConfig = _worker["cfg"]
    env: EpisodeRecorder = _worker["env"]
    seed = episode_seed(cfg.seed, index)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    expert = ScriptedExpert(cfg.task, cfg.noise, seed=seed) if cfg.policy == "scripted" else None
    done = False
    while not done:
        if expert is not None:
            action = expert.act(info["state"])
        else:
            space = env.action_space
            action = rng.uniform(space.low, space.high).astype(space.dtype)
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    episode, instruction, _ = _worker["buffer"].pop()
    return episode, instruction, f"{_worker['source']}/ep{index:06d}"


def _open_or_create(cfg: GenerateConfig) -> EpisodeStore:
    out = Path(cfg.out)
    settings = {
        k: v for k, v in asdict(cfg).items() if k not in ("episodes", "workers", "overwrite")
    }
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
    env = make_world_env(cfg)
    try:
        features = features_for(env, cfg.image_size)
        spec = action_spec_of(env)
        fps = float(env.metadata.get("render_fps") or 1.0 / env.unwrapped.dt)
        robot = "floating parallel-jaw gripper" if cfg.world.name == "tabletop" else cfg.env_id
        attrs = {command: settings, "synthetic": synthetic}
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
    camera = {"name": "front", "height": cfg.image_size, "width": cfg.image_size}
    return EpisodeStore.create(
        out,
        features=features,
        action_spec=spec,
        fps=fps,
        world=cfg.world.name if cfg.world.name == "tabletop" else f"gym:{cfg.env_id}",
        camera=camera,
        robot=robot,
        attrs=attrs,
        overwrite=cfg.overwrite,
    )


def _check_resume(
    out: Path, store: EpisodeStore, before: dict, settings: dict, cfg: GenerateConfig
) -> None:
    """Refuse to resume an unfinished store made with other settings (naming each one) or
    holding more episodes than asked for."""
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


def generate(cfg: GenerateConfig) -> dict:
    """Write ``cfg.episodes`` episodes to ``cfg.out``; return a summary with frames/s."""
    _check_policy(cfg)
    if cfg.episodes < 1 or cfg.workers < 0:
        raise ValueError(
            f"need episodes >= 1 and workers >= 0 (0: one per core), got {cfg.episodes}, "
            f"{cfg.workers}"
        )
    store = _open_or_create(cfg)
    todo = range(store.n_episodes, cfg.episodes)
    workers = cfg.workers or default_workers(len(todo))
    start = time.perf_counter()
    frames = 0
    desc = "synthesize" if isinstance(cfg, SynthesizeConfig) else "generate"
    with tqdm(total=cfg.episodes, initial=store.n_episodes, desc=desc, unit="ep") as bar:
        if workers == 1:
            _init_worker(cfg)
            results = map(_run_episode, todo)
        else:
            pool = mp.get_context("spawn").Pool(workers, _init_pool_worker, (cfg, workers))
            results = pool.imap(_run_episode, todo, chunksize=1)
        for episode, instruction, source in results:
            store.append_episode(episode, instruction, source)
            frames += len(episode["rgb"])
            bar.update()
        if workers > 1:
            pool.close()
            pool.join()
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
