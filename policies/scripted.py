"""The MuJoCo experts as zoo policies: they act on ``info["state"]``, the simulator's state
in MuJoCo and the world model's predicted task state in a world-model env."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmos_env.sim.experts import EXPERTS
from cosmos_env.sim.tasks import get_task
from policies.base import ACTION_DIM, BatchPolicy, batch_states


class ScriptedPolicy(BatchPolicy):
    """The task's scripted expert degraded by ``noise`` in [0, 1], row by row.

    As ``sim.experts.ScriptedExpert``: with probability ``noise`` an action is replaced by a
    uniform random one, otherwise it gets Gaussian noise of std ``0.5 * noise``. Every row
    draws the same number of random numbers whatever its state, so two worlds stepped with
    the same seed and batch see the same noise.
    """

    def __init__(self, task: str = "push", noise: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        get_task(task)
        super().__init__(seed)
        self.task, self.noise = task, float(noise)
        self.expert = EXPERTS[task]
        self.name = f"scripted-{noise:g}"

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        states = batch_states(info, len(obs), "ScriptedPolicy")
        actions = np.stack([self.expert(s) for s in states])
        if self.noise > 0:
            n = len(actions)
            replace = self.rng.random(n) < self.noise
            uniform = self.rng.uniform(-1.0, 1.0, (n, ACTION_DIM))
            gaussian = self.rng.normal(0.0, 0.5 * self.noise, (n, ACTION_DIM))
            actions = np.where(replace[:, None], uniform, actions + gaussian)
        return np.clip(actions, -1.0, 1.0).astype(np.float32)
