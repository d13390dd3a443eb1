"""The policy protocol every policy in the zoo follows, in the MuJoCo env and in the
world-model envs alike.

A policy sees what a Gymnasium env returns: the observation (the front-camera frame,
uint8 (64, 64, 3)) and ``info``, whose ``"state"`` (36,) is the simulator's state in MuJoCo
and the world model's predicted task state in the world-model envs. Frame-based policies
(behaviour cloning) read the frame and the gripper's proprioception from ``info``;
privileged policies (scripted experts, the planner) read the state.

``act_batch`` is the primary method: vector envs hand over (N, ...) observations and their
batched info (``info["state"]`` (N, 36)), so a batched policy runs one forward for all
sub-envs. ``act`` is the single-env form.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

ACTION_DIM = 7


@runtime_checkable
class Policy(Protocol):
    """``reset(seed)`` before a batch of episodes; ``act_batch(obs, info)`` -> float32 (N, 7)
    in [-1, 1] for observations uint8 (N, H, W, 3) and ``info["state"]`` (N, S)."""

    name: str

    def reset(self, seed: int | None = None, num_envs: int = 1) -> None: ...

    def act(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray: ...

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray: ...


def batch_states(info: dict[str, Any] | None, num: int, who: str) -> np.ndarray:
    """``info["state"]`` as float64 (num, S), or a ValueError saying that ``who`` needs it."""
    if info is None or "state" not in info:
        raise ValueError(
            f"{who} reads the task state from info['state']; pass the info dict the env "
            "returned (MuJoCo: the simulator's state; world model: its predicted state)"
        )
    states = np.asarray(info["state"], dtype=np.float64)
    if states.ndim == 1:
        states = states[None]
    if states.shape[0] != num:
        raise ValueError(f"info['state'] has {states.shape[0]} rows for {num} observations")
    return states


class BatchPolicy:
    """Base for the zoo: ``act`` runs ``act_batch`` on a batch of one; subclasses implement
    ``act_batch`` (and ``reset`` when they hold per-episode state or randomness)."""

    name = "policy"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.num_envs = 1

    def reset(self, seed: int | None = None, num_envs: int = 1) -> None:
        """Start new episodes in ``num_envs`` rows; a seed makes the draws repeatable."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.num_envs = num_envs

    def act(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        """float32 (7,) in [-1, 1] for one observation uint8 (H, W, 3)."""
        batch_info = None
        if info is not None:
            batch_info = {k: np.asarray(v)[None] for k, v in info.items() if k == "state"}
        return self.act_batch(np.asarray(obs)[None], batch_info)[0]

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        raise NotImplementedError


class RandomPolicy(BatchPolicy):
    """Uniform random actions in [-1, 1]."""

    name = "random"

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (len(obs), ACTION_DIM)).astype(np.float32)
