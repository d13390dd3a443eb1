"""Gymnasium registrations of every cosmos-env environment."""

from __future__ import annotations

import gymnasium as gym

from cosmos_env.sim.tasks import TASKS

# Env id suffix for each task, e.g. cosmos_env/Tabletop-PickPlace-v0.
TASK_IDS = {"push": "Push", "pick_place": "PickPlace"}


# Tasks with shipped world models: cosmos_env/WorldModel-Tabletop-<Task>-v0 loads
# ``<backend>-<task>`` (diffusion by default; gym.make(..., backend="ar") for the other).
WORLD_MODEL_TASKS = ("push",)


def registered_env_ids() -> list[str]:
    """All ids this package registers (used by the contract tests)."""
    ids = [f"cosmos_env/Tabletop-{suffix}-v0" for suffix in TASK_IDS.values()]
    return ids + [f"cosmos_env/WorldModel-Tabletop-{TASK_IDS[t]}-v0" for t in WORLD_MODEL_TASKS]


def register_envs() -> None:
    for task, suffix in TASK_IDS.items():
        env_id = f"cosmos_env/Tabletop-{suffix}-v0"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="cosmos_env.sim.tabletop_env:TabletopEnv",
            max_episode_steps=TASKS[task].max_episode_steps,
            kwargs={"task": task},
        )
    for task in WORLD_MODEL_TASKS:
        env_id = f"cosmos_env/WorldModel-Tabletop-{TASK_IDS[task]}-v0"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="cosmos_env.envs.world_model_env:WorldModelEnv",
            vector_entry_point="cosmos_env.envs.vector_env:WorldModelVectorEnv",
            max_episode_steps=TASKS[task].max_episode_steps,
            kwargs={"task": task},
        )
