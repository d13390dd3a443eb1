"""Gymnasium registrations of every cosmos-env environment: the tabletop's MuJoCo tasks,
the generic world-model env, and one world-model id per world with a shipped checkpoint."""

from __future__ import annotations

import gymnasium as gym

from cosmos_env.sim.tasks import TASKS

# Env id suffix for each task, e.g. cosmos_env/Tabletop-PickPlace-v0.
TASK_IDS = {"push": "Push", "pick_place": "PickPlace", "instruct": "Instruct"}

# Any release: gymnasium.make(GENERIC_ID, checkpoint=DIR); spaces come from the release.
GENERIC_ID = "cosmos_env/WorldModel-v0"

# Per-world ids of the shipped world models: id -> (world name, time limit). Each loads
# the world's shipped checkpoint of the backend asked for (diffusion by default) and
# refuses a checkpoint of another world.
WORLD_MODEL_IDS = {
    "cosmos_env/WorldModel-Tabletop-Push-v0": ("tabletop-push", TASKS["push"].max_episode_steps),
    "cosmos_env/WorldModel-Tabletop-PickPlace-v0": (
        "tabletop-pick_place",
        TASKS["pick_place"].max_episode_steps,
    ),
    # Action + instruction (mode (b)): reset(options={"instruction": text}).
    "cosmos_env/WorldModel-Tabletop-Instruct-v0": (
        "tabletop-instruct",
        TASKS["instruct"].max_episode_steps,
    ),
    "cosmos_env/WorldModel-Reacher-v5": ("gym:Reacher-v5", 50),  # Gymnasium's own envs
    "cosmos_env/WorldModel-Pusher-v5": ("gym:Pusher-v5", 100),
}

_ENTRY = "cosmos_env.envs.world_model_env:WorldModelEnv"
_VECTOR_ENTRY = "cosmos_env.envs.vector_env:WorldModelVectorEnv"


def registered_env_ids() -> list[str]:
    """All ids this package registers (used by the contract tests)."""
    ids = [f"cosmos_env/Tabletop-{suffix}-v0" for suffix in TASK_IDS.values()]
    return ids + [GENERIC_ID, *WORLD_MODEL_IDS]


def register_envs() -> None:
    for task, suffix in TASK_IDS.items():
        env_id = f"cosmos_env/Tabletop-{suffix}-v0"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=TASKS[task].entry_point,
            max_episode_steps=TASKS[task].max_episode_steps,
            kwargs={"task": task},
        )
    if GENERIC_ID not in gym.registry:
        # No registered time limit: the env truncates at its release's own.
        gym.register(id=GENERIC_ID, entry_point=_ENTRY, vector_entry_point=_VECTOR_ENTRY)
    for env_id, (world, steps) in WORLD_MODEL_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=_ENTRY,
            vector_entry_point=_VECTOR_ENTRY,
            max_episode_steps=steps,
            kwargs={"world": world},
        )
