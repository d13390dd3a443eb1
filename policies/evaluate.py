"""Run a policy for a batch of episodes in MuJoCo and in a world model, from the same
initial states.

Both worlds are vector envs stepped in lockstep, one row per episode: MuJoCo as a
``SyncVectorEnv`` of ``TabletopEnv`` (episode i reset with its own seed), the world model
as a ``WorldModelVectorEnv`` reset from exactly those MuJoCo frames and states. Episodes
run the task's full time limit without early termination; an episode succeeds if the
task's success test holds at any step (as ``benchmarks/expert_success.py`` counts it). The
policy is reset with the same seed before each world, so noisy policies draw the same
noise in both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.generate import episode_seed
from cosmos_env.precision import AmpSetting
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.sim.tasks import get_task
from policies.base import Policy


@dataclass
class EpisodeResults:
    """Per-episode outcomes of one policy in one world: ``success`` bool (N,) (the success
    test held at some step), ``returns`` float64 (N,) (sum of the dense task reward),
    ``first_success`` int (N,) (step of the first success, -1 if none)."""

    success: np.ndarray
    returns: np.ndarray
    first_success: np.ndarray
    seconds: float

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())


def initial_seeds(base_seed: int, episodes: int) -> list[int]:
    """The MuJoCo reset seed of each evaluation episode."""
    return [episode_seed(base_seed, i) for i in range(episodes)]


def mujoco_vector_env(task: str, episodes: int, image_size: int = 64) -> gym.vector.VectorEnv:
    """``episodes`` MuJoCo tabletops as one vector env (no early termination)."""
    return gym.vector.SyncVectorEnv(
        [lambda: TabletopEnv(task, image_size, terminate_on_success=False) for _ in range(episodes)]
    )


def initial_states(
    env: gym.vector.VectorEnv, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reset the MuJoCo vector env with one seed per row: frames uint8 (N, H, W, 3),
    states (N, S), and the batched info."""
    obs, info = env.reset(seed=seeds)
    return obs, np.asarray(info["state"]), info


def _run(env, obs, info, policy: Policy, steps: int, desc: str) -> EpisodeResults:
    """Step ``env`` (no autoreset within ``steps``: episodes run the full time limit) and
    sum each row's rewards; a row succeeds if ``info["is_success"]`` held at some step."""
    n = len(obs)
    returns, first = np.zeros(n), np.full(n, -1)
    start = time.perf_counter()
    for t in tqdm(range(steps), desc=desc, unit="step", leave=False):
        obs, rewards, _, _, info = env.step(policy.act_batch(obs, info))
        returns += np.asarray(rewards, np.float64)
        success = np.asarray(info.get("is_success", np.zeros(n, bool)), bool)
        hit = success & (first < 0)
        first[hit] = t + 1
    return EpisodeResults(first >= 0, returns, first, time.perf_counter() - start)


def run_in_mujoco(
    policy: Policy,
    env: gym.vector.VectorEnv,
    seeds: list[int],
    task: str = "push",
    policy_seed: int = 0,
    steps: int | None = None,
) -> EpisodeResults:
    """``policy`` in the MuJoCo vector ``env`` (one row per seed) for ``steps`` (default:
    the task's time limit)."""
    obs, _, info = initial_states(env, seeds)
    policy.reset(seed=policy_seed, num_envs=len(seeds))
    steps = steps or get_task(task).max_episode_steps
    return _run(env, obs, info, policy, steps, f"mujoco {getattr(policy, 'name', '')}")


def run_in_world_model(
    policy: Policy,
    world_model: WorldModel,
    frames: np.ndarray,
    states: np.ndarray,
    policy_seed: int = 0,
    env_seed: int = 0,
    steps: int | None = None,
    sampler_steps: int | None = None,
    amp: AmpSetting = "auto",
) -> EpisodeResults:
    """``policy`` in a world-model vector env whose rows start from MuJoCo's initial
    ``frames`` uint8 (N, H, W, 3) and true ``states`` (N, S); ``amp`` as the env takes it."""
    steps = steps or world_model.world.max_episode_steps
    env = WorldModelVectorEnv(
        len(frames),
        world_model=world_model,
        sampler_steps=sampler_steps,
        reset_source="frames",
        terminate_on_success=False,
        max_episode_steps=steps,
        amp=amp,
    )
    try:
        obs, info = env.reset(seed=env_seed, options={"frames": frames, "states": states})
        policy.reset(seed=policy_seed, num_envs=len(frames))
        name = f"{world_model.backend} {getattr(policy, 'name', '')}"
        return _run(env, obs, info, policy, steps, name)
    finally:
        env.close()
