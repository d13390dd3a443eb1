"""Ground truth from a world's simulator: roll a policy out from seeded resets and record
the rendered frames, states, normalised actions, rewards and success flags, for any world
with a simulator (the tabletop, a Gymnasium MuJoCo env)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from cosmos_env.data.world import World
from cosmos_env.generate import episode_seed
from cosmos_env.sim.recorder import read_state, render_frame
from cosmos_env.sim.worlds import play_policy, scripted_policy, tabletop_world

POLICIES = ("scripted", "random", "play")


@dataclass
class Rollouts:
    """Simulator ground truth: ``frames`` uint8 (N, T+1, H, W, 3), ``states`` (N, T+1, S),
    ``actions`` float32 (N, T, A) in [-1, 1] (action t follows frame t), ``rewards``
    (N, T) and ``success`` bool (N, T) of arriving at frames 1..T."""

    frames: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    seconds: float
    rewards: np.ndarray | None = None
    success: np.ndarray | None = None


def as_world(world: World | str) -> World:
    """A World, or a tabletop task name (``push``) for its world."""
    return tabletop_world(world) if isinstance(world, str) else world


def _policy(world: World, name: str, noise: float, seed: int, space) -> Callable:
    """state (S,) -> action in the env's own space: the scripted expert, uniform random or
    goal-free play (``sim/play.py``)."""
    if name == "scripted":
        return scripted_policy(world, noise, seed)
    if name == "play":
        return play_policy(world, seed, space.low, space.high)
    if name == "random":
        rng = np.random.default_rng(seed)
        return lambda state: rng.uniform(space.low, space.high).astype(np.float32)
    raise ValueError(f"unknown policy {name!r}; choose one of {list(POLICIES)}")


def simulate(
    world: World | str,
    policy: str,
    noise: float,
    episodes: int,
    horizon: int,
    seed: int,
    image_size: int = 64,
    reset_options: dict | None = None,
    env_kwargs: dict | None = None,
) -> Rollouts:
    """Roll ``policy`` out in ``world``'s simulator for ``horizon`` steps in each of
    ``episodes`` episodes (episode i reset with ``episode_seed(seed, i)`` and
    ``reset_options``, e.g. the instructed tabletop's ``{"instruction": text}``, in the env
    ``world.make_env`` builds with ``env_kwargs``; episodes run the whole horizon: nothing
    resets them early)."""
    if episodes < 1 or horizon < 1:
        raise ValueError(f"need episodes >= 1 and horizon >= 1, got {episodes}, {horizon}")
    world = as_world(world)
    env = world.make_env(image_size, **(env_kwargs or {}))
    low, high = env.action_space.low, env.action_space.high
    parts: dict[str, list] = {k: [] for k in ("frames", "states", "actions", "rewards", "success")}
    start = time.perf_counter()
    try:
        for i in tqdm(range(episodes), desc=f"simulate {world.name}", unit="ep"):
            ep_seed = episode_seed(seed, i)
            act = _policy(world, policy, noise, ep_seed, env.action_space)
            _, info = env.reset(seed=ep_seed, options=reset_options)
            rows = {"frames": [render_frame(env, image_size)], "states": [read_state(env, info)]}
            rows |= {"actions": [], "rewards": [], "success": []}
            for _ in range(horizon):
                action = np.clip(np.asarray(act(rows["states"][-1]), np.float64), low, high)
                _, reward, _, _, info = env.step(action.astype(env.action_space.dtype))
                rows["actions"].append((2 * (action - low) / (high - low) - 1).astype(np.float32))
                rows["frames"].append(render_frame(env, image_size))
                rows["states"].append(read_state(env, info))
                rows["rewards"].append(float(reward))
                rows["success"].append(bool(info.get("is_success", False)))
            for key, value in rows.items():
                parts[key].append(np.stack(value) if key != "rewards" else np.asarray(value))
    finally:
        env.close()
    seconds = time.perf_counter() - start
    out = {k: np.stack(v) for k, v in parts.items()}
    return Rollouts(
        out["frames"], out["states"].astype(np.float64), out["actions"], seconds,
        out["rewards"], out["success"],
    )  # fmt: skip
