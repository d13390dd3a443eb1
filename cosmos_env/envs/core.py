"""The batched state both world-model envs share: per sub-env latent context, the last
decoded frame and the probed task state; reset rows from frames, step all rows in one
batched forward, score with the task's functions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from cosmos_env.checkpoint import CheckpointError
from cosmos_env.dynamics.release import BACKENDS, WorldModel, default_checkpoint, load_world_model
from cosmos_env.dynamics.rollout import initial_context, step_context
from cosmos_env.envs.resets import (
    RESET_SOURCES,
    MujocoResets,
    check_frames,
    check_states,
    held_out_first_frames,
)
from cosmos_env.machine import set_torch_threads
from cosmos_env.precision import AmpSetting, autocast, resolve_amp
from cosmos_env.sim.tasks import get_task


@lru_cache(maxsize=4)
def shared_world_model(checkpoint: str, tokenizer: str | None) -> WorldModel:
    """One loaded world model per (checkpoint, tokenizer): envs only read it (eval mode)."""
    return load_world_model(checkpoint, tokenizer)


def env_world_model(
    task: str, checkpoint: str | None, backend: str | None, tokenizer: str | None
) -> WorldModel:
    """The world model an env runs: ``checkpoint`` if given, else the shipped one of
    ``backend`` (default "diffusion") for ``task``; a checkpoint of another kind than the
    requested backend is refused."""
    get_task(task)  # an unknown task is named as such, not as a missing checkpoint
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} unknown; choose one of {sorted(BACKENDS)}")
    wm = shared_world_model(
        str(checkpoint or default_checkpoint(backend or "diffusion", task)), tokenizer
    )
    kind = getattr(wm.dynamics.cfg, "kind", "diffusion")
    if backend is not None and BACKENDS[backend] != kind:
        raise ValueError(
            f"backend={backend!r} but checkpoint {wm.source} is a {kind} model; pass a "
            f"{BACKENDS[backend]} checkpoint or leave out one of the two"
        )
    return wm


def check_sampler_steps(steps, default: int) -> int:
    """``steps`` as a positive int (None: ``default``); 0, negatives, fractions and bools
    are refused rather than rounded or replaced."""
    if steps is None:
        return int(default)
    try:
        whole = not isinstance(steps, bool) and float(steps).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not whole or int(steps) < 1:
        raise ValueError(f"sampler_steps must be a whole number >= 1 or None, got {steps!r}")
    return int(steps)


class WorldModelCore:
    """State of ``num_envs`` world-model rollouts.

    ``frames`` uint8 (N, H, W, 3) are the current observations, ``states`` float64 (N, S)
    the task states (the world model's state track, or the probe's reading of the frame
    for models without one); ``step`` advances every row with one batched prediction.
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
        amp: AmpSetting,
    ) -> None:
        if reset_source not in RESET_SOURCES:
            raise ValueError(f"reset_source {reset_source!r} unknown; choose from {RESET_SOURCES}")
        self.wm = world_model
        self.task = get_task(task)
        self.num_envs = num_envs
        self.sparse_reward = sparse_reward
        self.sampler = sampler or world_model.sampler
        samplers = world_model.dynamics.samplers
        if self.sampler not in samplers:
            raise ValueError(
                f"sampler={self.sampler!r} unknown to {world_model.source.name} "
                f"({world_model.backend}); choose one of {samplers}"
            )
        self.sampler_steps = check_sampler_steps(sampler_steps, world_model.sampler_steps)
        self.reset_source = reset_source
        self.amp = resolve_amp(amp)  # "auto": bf16 only where the CPU has it natively
        set_torch_threads()  # no more threads than usable cores
        size, cfg = world_model.image_size, world_model.dynamics.cfg
        self.image_size, self.state_dim = size, cfg.state_dim
        self.frames = np.zeros((num_envs, size, size, 3), np.uint8)
        self.states = np.zeros((num_envs, cfg.state_dim))
        self.context = None
        self._pool, self._pool_states = world_model.reset_frames, world_model.reset_states
        if store is not None:
            self._pool, self._pool_states = held_out_first_frames(str(store))
        self._mujoco = MujocoResets(task, size) if reset_source == "mujoco" else None

    def initial_frames(
        self, rng: np.random.Generator, num: int, frames=None, states=None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Initial frames uint8 (num, k, H, W, 3) for ``num`` rows from the reset source,
        with their true task states (num, k, S) where the source knows them (a store, a
        MuJoCo reset, or states the caller passes with its frames), else None."""
        ctx = self.wm.dynamics.cfg.context
        if frames is not None:
            frames = check_frames(frames, num, self.image_size, ctx)
            if states is not None:
                states = check_states(states, frames.shape[:2], self.state_dim)
            return frames, states
        if states is not None:
            raise ValueError("reset options give 'states' without 'frames'; pass both")
        if self.reset_source == "frames":
            raise ValueError(
                "reset_source='frames' needs reset(options={'frames': uint8 array of shape "
                f"({num}, {self.image_size}, {self.image_size}, 3)}})"
            )
        if self._mujoco is not None:
            frames = self._mujoco.sample(rng, num)[:, None]
            return frames, self._mujoco.last_states[:, None]
        rows = rng.integers(0, len(self._pool), num)
        return self._pool[rows][:, None], self._pool_states[rows][:, None]

    def reset_rows(self, mask: np.ndarray, frames: np.ndarray, states=None) -> None:
        """Start the rows where ``mask`` (N,) is True from ``frames`` (M, k, H, W, 3) and,
        when known, their states (M, k, S); unknown states are read by the probe."""
        m, k = frames.shape[:2]
        flat = torch.from_numpy(np.ascontiguousarray(frames.reshape(m * k, *frames.shape[2:])))
        latents = self.wm.encode(flat)
        latents = latents.view(m, k, *latents.shape[1:])
        if states is not None:
            states = torch.as_tensor(np.asarray(states), dtype=torch.float32)
        new = initial_context(self.wm.dynamics, latents, None, states)
        if mask.all():
            self.context = new
        elif self.context is None:
            raise RuntimeError("the first reset must start every sub-env (no reset_mask)")
        else:
            self.context.set_rows(torch.from_numpy(np.flatnonzero(mask)), new)
        self.frames[mask] = frames[:, -1]
        if new.states is not None:
            self.states[mask] = new.states[:, -1].double().numpy()
        else:
            self.states[mask] = self.wm.dynamics.predict_state(latents[:, -1]).double().numpy()

    @torch.inference_mode()
    def step(self, actions: np.ndarray, generator: torch.Generator) -> None:
        """Advance every row by its action (N, A) float32 in [-1, 1]."""
        action = torch.from_numpy(actions)
        with autocast(self.amp):
            latent, state = step_context(
                self.wm.dynamics, self.context, action, generator, self.sampler_steps, self.sampler
            )
        check_finite_prediction(self.wm, self.amp, latent=latent, state=state)
        self.frames[:] = self.wm.decode(latent if self.wm.discrete else latent.float()).numpy()
        self.states[:] = state.double().numpy()

    def reward(self) -> np.ndarray:
        return np.asarray(self.task.reward(self.states, sparse=self.sparse_reward), np.float64)

    def success(self) -> np.ndarray:
        return np.asarray(self.task.success(self.states), bool)

    def close(self) -> None:
        if self._mujoco is not None:
            self._mujoco.close()


def check_finite_prediction(wm: WorldModel, amp: bool, **predicted: torch.Tensor) -> None:
    """Raise a `CheckpointError` naming ``wm``'s checkpoint if any predicted tensor (B, ...)
    holds NaN or inf, which a sound model never gives: its weights are corrupt or diverged.
    Costs one ``isfinite`` per tensor; the rows are located only on failure."""
    for what, tensor in predicted.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            rows = (~torch.isfinite(tensor.flatten(1)).all(1)).nonzero().flatten().tolist()
            hint = "; bf16 autocast was on, so also try amp=False" if amp else ""
            raise CheckpointError(
                f"the world model {wm.source} predicted a non-finite {what} (NaN or inf) for "
                f"sub-envs {rows}: its weights are corrupt or diverged. Re-download the "
                f"checkpoint or re-export it from its training run{hint}"
            )
