"""Gymnasium registrations of every cosmos-env environment."""

from __future__ import annotations

import gymnasium as gym

from cosmos_env.sim.tasks import TASKS

# Env id suffix for each task, e.g. cosmos_env/Tabletop-PickPlace-v0.
TASK_IDS = {"push": "Push", "pick_place": "PickPlace"}


def registered_env_ids() -> list[str]:
    """All ids this package registers (used by the contract tests)."""
    return [f"cosmos_env/Tabletop-{suffix}-v0" for suffix in TASK_IDS.values()]


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
