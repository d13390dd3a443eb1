"""Run a policy for a batch of episodes in MuJoCo and in a world model, from the same
initial states.

Both worlds are vector envs stepped in lockstep, one row per episode: MuJoCo as a
``SyncVectorEnv`` of ``TabletopEnv`` (episode i reset with its own seed), the world model
as a ``WorldModelVectorEnv`` reset from exactly those MuJoCo frames and states. Episodes
run the task's full time limit without early termination; an episode succeeds if the
task's success test holds at any step (as ``benchmarks/expert_success.py`` counts it). The
policy is reset with the same seed before each world, so noisy policies draw the same
noise in both.

A suite of policies is a map over an executor (``cosmos_env.executors``): each policy is
one independent job, run in every world by a worker that loaded the world models and reset
the MuJoCo tabletops once (``open_suite``), so that the results are the same whichever
executor and however many workers ran them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import env_world_model
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.executors import make_executor
from cosmos_env.generate import episode_seed
from cosmos_env.precision import AmpSetting
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.sim.tasks import get_task
from policies.base import Policy
from policies.zoo import make_policy


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


@dataclass(frozen=True)
class Suite:
    """Where a suite's policies run: ``episodes`` MuJoCo tabletops of ``task`` reset with
    ``initial_seeds(seed, episodes)``, and the world model of each of ``backends`` (the
    release ``checkpoints`` maps it to, else its shipped one) reset from those same frames
    and states; ``policy_seed`` seeds every policy in every world, ``amp`` is the
    world-model envs' setting. The CEM planner imagines with the diffusion backend's model."""

    task: str
    episodes: int
    seed: int
    backends: tuple[str, ...]
    checkpoints: dict[str, str | Path | None] = field(default_factory=dict)
    policy_seed: int = 0
    amp: AmpSetting = "auto"

    def world_models(self) -> dict[str, WorldModel]:
        """Each backend's world model (loaded once per process: ``env_world_model`` caches)."""
        world = f"tabletop-{self.task}"  # the suite runs in the tabletop: so must a checkpoint
        return {b: env_world_model(world, self.checkpoints.get(b), b, None) for b in self.backends}


_open: dict[str, Any] = {}  # per worker: the suite's worlds, set up by open_suite


def open_suite(suite: Suite) -> None:
    """Executor initializer: load the world models and reset the MuJoCo tabletops, once per
    worker, for the ``evaluate_policy`` jobs that follow."""
    close_suite()
    seeds = initial_seeds(suite.seed, suite.episodes)
    mujoco = mujoco_vector_env(suite.task, suite.episodes)
    frames, states, _ = initial_states(mujoco, seeds)
    _open.update(suite=suite, world_models=suite.world_models(), mujoco=mujoco)
    _open.update(seeds=seeds, frames=frames, states=states)


def close_suite() -> None:
    """Close the MuJoCo tabletops ``open_suite`` opened in this process, if any."""
    if (mujoco := _open.pop("mujoco", None)) is not None:
        mujoco.close()
    _open.clear()


def evaluate_policy(spec: dict[str, Any]) -> tuple[str, dict[str, EpisodeResults]]:
    """Executor job: the policy of ``spec`` (``policies.zoo``) for all the suite's episodes
    in MuJoCo and in each world model; its name and its results per world."""
    suite: Suite = _open["suite"]
    world_models = _open["world_models"]
    policy = make_policy(dict(spec), suite.task, world_models.get("diffusion"))
    seed = suite.policy_seed
    results = {"mujoco": run_in_mujoco(policy, _open["mujoco"], _open["seeds"], suite.task, seed)}
    for backend, wm in world_models.items():
        frames, states = _open["frames"], _open["states"]
        results[backend] = run_in_world_model(policy, wm, frames, states, seed, amp=suite.amp)
    return policy.name, results


def evaluate_policies(
    suite: Suite, specs: list[dict[str, Any]], executor: str = "local", workers: int = 1
) -> Iterator[tuple[str, dict[str, EpisodeResults]]]:
    """``evaluate_policy`` of each of ``specs``, in their order, as independent jobs on
    ``workers`` workers of ``executor`` (local with one worker: in this process)."""
    try:
        jobs = make_executor(executor, workers)
        yield from jobs.map(evaluate_policy, specs, open_suite, (suite,))
    finally:
        close_suite()  # what this process opened (one local worker), none of a pool's
