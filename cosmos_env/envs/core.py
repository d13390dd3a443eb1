"""The batched state both world-model envs share: per sub-env latent context, the last
decoded frame and the probed task state; reset rows from frames, step all rows in one
batched forward, score with the task's functions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from cosmos_env.dynamics.release import WorldModel, load_world_model
from cosmos_env.dynamics.rollout import LatentContext
from cosmos_env.envs.resets import RESET_SOURCES, MujocoResets, check_frames, held_out_first_frames
from cosmos_env.sim.tasks import get_task
from cosmos_env.tokenizer.release import decode_frames, encode_frames


@lru_cache(maxsize=4)
def shared_world_model(checkpoint: str, tokenizer: str | None) -> WorldModel:
    """One loaded world model per (checkpoint, tokenizer): envs only read it (eval mode)."""
    return load_world_model(checkpoint, tokenizer)


class WorldModelCore:
    """State of ``num_envs`` world-model rollouts.

    ``frames`` uint8 (N, H, W, 3) are the current observations, ``states`` float64 (N, S)
    the probe's task states; ``step`` advances every row with one batched prediction.
    """

    def __init__(
        self,
        world_model: WorldModel,
        num_envs: int,
        task: str,
        sparse_reward: bool,
        sampler: str | None,
        sampler_steps: int | None,
        reset_source: str,
        store: str | None,
        amp: bool,
    ) -> None:
        if reset_source not in RESET_SOURCES:
            raise ValueError(f"reset_source {reset_source!r} unknown; choose from {RESET_SOURCES}")
        self.wm = world_model
        self.task = get_task(task)
        self.num_envs = num_envs
        self.sparse_reward = sparse_reward
        self.sampler = sampler or world_model.sampler
        self.sampler_steps = int(sampler_steps or world_model.sampler_steps)
        self.reset_source = reset_source
        self.amp = amp
        size, cfg = world_model.image_size, world_model.dynamics.cfg
        self.image_size, self.state_dim = size, cfg.state_dim
        self.frames = np.zeros((num_envs, size, size, 3), np.uint8)
        self.states = np.zeros((num_envs, cfg.state_dim))
        self.context: LatentContext | None = None
        self._pool = world_model.reset_frames
        if store is not None:
            self._pool = held_out_first_frames(str(store))[0]
        self._mujoco = MujocoResets(task, size) if reset_source == "mujoco" else None

    def initial_frames(self, rng: np.random.Generator, num: int, frames=None) -> np.ndarray:
        """uint8 (num, k, H, W, 3) initial frames for ``num`` rows from the reset source."""
        ctx = self.wm.dynamics.cfg.context
        if frames is not None:
            return check_frames(frames, num, self.image_size, ctx)
        if self.reset_source == "frames":
            raise ValueError(
                "reset_source='frames' needs reset(options={'frames': uint8 array of shape "
                f"({num}, {self.image_size}, {self.image_size}, 3)}})"
            )
        if self._mujoco is not None:
            return self._mujoco.sample(rng, num)[:, None]
        return self._pool[rng.integers(0, len(self._pool), num)][:, None]

    def reset_rows(self, mask: np.ndarray, frames: np.ndarray) -> None:
        """Start the rows where ``mask`` (N,) is True from ``frames`` (M, k, H, W, 3)."""
        m, k = frames.shape[:2]
        flat = torch.from_numpy(np.ascontiguousarray(frames.reshape(m * k, *frames.shape[2:])))
        latents = encode_frames(self.wm.tokenizer, flat)
        latents = latents.view(m, k, *latents.shape[1:])
        cfg = self.wm.dynamics.cfg
        new = LatentContext(latents, cfg.context, cfg.action_dim)
        if mask.all():
            self.context = new
        elif self.context is None:
            raise RuntimeError("the first reset must start every sub-env (no reset_mask)")
        else:
            self.context.set_rows(torch.from_numpy(np.flatnonzero(mask)), new)
        self.frames[mask] = frames[:, -1]
        self.states[mask] = self.wm.dynamics.predict_state(latents[:, -1]).double().numpy()

    @torch.inference_mode()
    def step(self, actions: np.ndarray, generator: torch.Generator) -> None:
        """Advance every row by its action (N, A) float32 in [-1, 1]."""
        ctx = self.context
        step_actions = ctx.with_action(torch.from_numpy(actions))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp):
            latent = self.wm.dynamics.predict_next(
                ctx.latents, step_actions, generator, self.sampler_steps, self.sampler
            ).float()
        ctx.push(latent, step_actions)
        self.frames[:] = decode_frames(self.wm.tokenizer, latent).numpy()
        self.states[:] = self.wm.dynamics.predict_state(latent).double().numpy()

    def reward(self) -> np.ndarray:
        return np.asarray(self.task.reward(self.states, sparse=self.sparse_reward), np.float64)

    def success(self) -> np.ndarray:
        return np.asarray(self.task.success(self.states), bool)

    def close(self) -> None:
        if self._mujoco is not None:
            self._mujoco.close()
