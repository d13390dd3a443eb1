"""Model-predictive control by the cross-entropy method, planning in the world model.

Every step the planner imagines ``population`` candidate action sequences of ``horizon``
steps from the current task state, scores each with the task's reward, refits a Gaussian
to the best ``elites`` for ``iterations`` rounds, and executes the first action of the
mean (the rest warm-starts the next step's plan).

Imagination runs the world model's state track, the learned dynamics that the
world-model env itself steps to produce its task state, reward and success. The env's
reward reads only that track (the frames are drawn to match it), so rolling the track
alone gives exactly the rewards the vector env would return for the same actions, without
denoising or decoding a single frame: thousands of candidates per step on a CPU. Models
without a state track (the AR backend) cannot be planned with here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import env_world_model, simulator_world
from cosmos_env.envs.scoring import Scorer
from policies.base import ACTION_DIM, BatchPolicy, batch_states


class StateTrackImagination:
    """Batched what-if rollouts of a world model's state track.

    ``returns(states, actions, plans)``: context states (B, K, S) (oldest first, world
    units) and the K-1 actions between them (B, K-1, A), candidate plans (B, P, H, A) in
    [-1, 1] -> the sum over the H imagined steps of the reward the world-model env would
    give (its world's function, or the release's learned head), float64 (B, P).
    """

    def __init__(self, world_model: WorldModel, discount: float = 1.0):
        cfg = world_model.dynamics.cfg
        if not getattr(cfg, "state_track", False):
            raise ValueError(
                f"{world_model.source} has no state track ({world_model.backend} backend); "
                "CEM planning imagines with the state track: use a diffusion world model"
            )
        self.dynamics = world_model.dynamics
        self.context = cfg.context
        self.scorer = Scorer(world_model, simulator_world(world_model))
        self.discount = discount

    @torch.inference_mode()
    def returns(self, states: np.ndarray, actions: np.ndarray, plans: np.ndarray) -> np.ndarray:
        b, p, h, a = plans.shape
        ctx_states = torch.as_tensor(states, dtype=torch.float32).repeat_interleave(p, dim=0)
        ctx_actions = torch.as_tensor(actions, dtype=torch.float32).repeat_interleave(p, dim=0)
        plan = torch.as_tensor(plans, dtype=torch.float32).reshape(b * p, h, a)
        total = np.zeros(b * p)
        for t in range(h):
            step_actions = torch.cat([ctx_actions, plan[:, t, None]], dim=1)  # (BP, K, A)
            state = self.dynamics.predict_next_state(ctx_states, step_actions)  # (BP, S)
            reward = self.scorer.score(
                ctx_states[:, -1].double().numpy(), plan[:, t].numpy(), state.double().numpy()
            )["reward"]
            total += self.discount**t * reward
            ctx_states = torch.cat([ctx_states[:, 1:], state[:, None]], dim=1)
            ctx_actions = step_actions[:, 1:]
        return total.reshape(b, p)


class CEMPolicy(BatchPolicy):
    """CEM-MPC over ``info["state"]``: the simulator's state in MuJoCo, the world model's
    predicted state in a world-model env; the plan is always imagined in ``world_model``
    (default: the shipped diffusion model of ``task``). The defaults are the policy-eval
    suite's setting (80% success in MuJoCo on the suite's 50 push episodes)."""

    def __init__(
        self,
        task: str = "push",
        world_model: WorldModel | None = None,
        checkpoint: str | None = None,
        horizon: int = 15,
        population: int = 256,
        elites: int = 16,
        iterations: int = 4,
        init_std: float = 0.6,
        min_std: float = 0.05,
        fixed: dict[int, float] | None = None,
        seed: int | None = None,
    ) -> None:
        if not 0 < elites <= population:
            raise ValueError(f"need 0 < elites <= population, got {elites} and {population}")
        if horizon < 1 or iterations < 1:
            raise ValueError(f"need horizon >= 1 and iterations >= 1, got {horizon}, {iterations}")
        super().__init__(seed)
        world = None if checkpoint else f"tabletop-{task}"  # the shipped model of the task
        wm = world_model or env_world_model(world, checkpoint, "diffusion", None)
        self.imagine = StateTrackImagination(wm)
        self.horizon, self.population, self.elites = horizon, population, elites
        self.iterations, self.init_std, self.min_std = iterations, init_std, min_std
        self.fixed = dict(fixed or {})
        self.name = "cem-mpc"
        self._states = self._actions = self._plan = None

    def reset(self, seed: int | None = None, num_envs: int = 1) -> None:
        super().reset(seed, num_envs)
        self._states = self._actions = self._plan = None

    def _observe(self, states: np.ndarray) -> None:
        """Append the current states (N, S) to the history the state track needs: the
        last K states and the K-1 actions between them, padded as at an env reset."""
        k = self.imagine.context
        if self._states is None or len(self._states) != len(states):
            self._states = np.repeat(states[:, None], k, axis=1)
            self._actions = np.zeros((len(states), k - 1, ACTION_DIM), np.float32)
            self._plan = np.zeros((len(states), self.horizon, ACTION_DIM), np.float32)
            return
        self._states = np.concatenate([self._states[:, 1:], states[:, None]], axis=1)

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        states = batch_states(info, len(obs), "CEMPolicy")
        self._observe(states)
        n, shape = len(states), (self.population, self.horizon, ACTION_DIM)
        mean = self._plan
        std = np.full_like(mean, self.init_std)
        for _ in range(self.iterations):
            noise = self.rng.standard_normal((n, *shape)).astype(np.float32)
            plans = np.clip(mean[:, None] + std[:, None] * noise, -1.0, 1.0)
            plans[:, 0] = np.clip(mean, -1.0, 1.0)  # the incumbent competes too
            for dim, value in self.fixed.items():
                plans[..., dim] = value
            scores = self.imagine.returns(self._states, self._actions, plans)  # (N, P)
            best = np.argsort(-scores, axis=1)[:, : self.elites]
            elite = np.take_along_axis(plans, best[:, :, None, None], axis=1)
            mean, std = elite.mean(axis=1), np.maximum(elite.std(axis=1), self.min_std)
        action = np.clip(mean[:, 0], -1.0, 1.0).astype(np.float32)
        self._plan = np.concatenate([mean[:, 1:], mean[:, -1:]], axis=1)  # warm start
        self._actions = np.concatenate([self._actions[:, 1:], action[:, None]], axis=1)
        return action
