"""One person driving a world model live: the world model and, where its world has a
simulator, that simulator beside it under the same actions, both started from the same
frame and state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import simulator_world
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.eval.metrics import psnr, to_unit
from cosmos_env.sim.recorder import read_state, render_frame

SOURCES = ("simulator", "held-out")
DIFFERENCE_GAIN = 4  # |world model - simulator| is faint at 8 bits: amplified to be seen


@dataclass
class Step:
    """What one reset or step shows: frames uint8 (H, W, 3); the simulator's frame and the
    amplified difference where the session has a simulator in step, else None."""

    world_model: np.ndarray
    simulator: np.ndarray | None
    difference: np.ndarray | None
    t: int
    action: list[float]  # the action the envs took, in [-1, 1]
    reward: float
    success: bool
    simulator_reward: float | None = None
    psnr: float | None = None


def check_action(action: object, dim: int) -> np.ndarray:
    """``action`` as float32 (dim,) in [-1, 1], or a ValueError naming what is wrong (a
    browser's JSON turns NaN and infinity into null)."""
    if not isinstance(action, list | tuple) or len(action) != dim:
        raise ValueError(f"action must be a list of {dim} numbers, got {action!r}")
    for i, value in enumerate(action):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"action[{i}] is {value!r}, not a number")
        if not np.isfinite(value):
            raise ValueError(f"action[{i}] is {value}, not a finite number")
    return np.clip(np.asarray(action, np.float32), -1.0, 1.0)


class PlaySession:
    """A world-model env (batch 1) and, where the release's world has one, its simulator.

    ``reset("simulator", seed)`` starts both from the simulator's reset for ``seed``;
    ``reset("held-out", index)`` starts the world model from one of the release's held-out
    frames (the simulator cannot be put there, so it stays out of step until the next
    simulator reset). ``step(action)`` advances both under the same action in [-1, 1].
    """

    def __init__(self, world_model: WorldModel, sampler_steps: int | None = None) -> None:
        self.world_model = world_model
        self.env = WorldModelEnv(
            world_model=world_model, sampler_steps=sampler_steps, terminate_on_success=False
        )
        self.sampler_steps = self.env.core.sampler_steps
        self.world = simulator_world(world_model)
        self.sim = self.world.make_env(world_model.image_size) if self.world else None
        self.in_step = False  # the simulator started where the world model did
        self.t = 0

    @property
    def action_names(self) -> list[str]:
        return list(self.env.action_spec.names)

    @property
    def sources(self) -> list[str]:
        return [s for s in SOURCES if s != "simulator" or self.sim is not None]

    @property
    def held_out(self) -> int:
        """How many held-out starting frames the release ships."""
        return len(self.world_model.reset_frames)

    def reset(self, source: str = "simulator", index: int = 0) -> Step:
        """Start again from ``source``: a seed of the simulator's reset, or the index of a
        held-out frame."""
        if source not in self.sources:
            raise ValueError(f"start {source!r} unknown here; choose from {self.sources}")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"start index must be an integer >= 0, got {index!r}")
        if source == "simulator":
            _, info = self.sim.reset(seed=index)
            frame = render_frame(self.sim, self.world_model.image_size)
            state = read_state(self.sim, info)
        else:
            if index >= self.held_out:
                raise ValueError(f"held-out start {index} out of range: {self.held_out} ship")
            frame = self.world_model.reset_frames[index]
            state = self.world_model.reset_states[index]
        obs, info = self.env.reset(seed=index, options={"frames": frame, "states": state})
        self.in_step, self.t = source == "simulator", 0
        zero = [0.0] * len(self.action_names)
        return self._show(obs, frame if self.in_step else None, zero, 0.0, info, None)

    def step(self, action: object) -> Step:
        """Advance the world model (and the simulator, if in step) by ``action``."""
        action = check_action(action, len(self.action_names))
        obs, reward, _, _, info = self.env.step(action)
        sim_frame, sim_reward = None, None
        if self.in_step:
            low, high = self.sim.action_space.low, self.sim.action_space.high
            scaled = low + (action.astype(np.float64) + 1.0) / 2.0 * (high - low)
            _, sim_reward, _, _, _ = self.sim.step(scaled.astype(self.sim.action_space.dtype))
            sim_frame = render_frame(self.sim, self.world_model.image_size)
        self.t += 1
        return self._show(obs, sim_frame, action.tolist(), reward, info, sim_reward)

    def _show(self, obs, sim_frame, action, reward, info, sim_reward) -> Step:
        step = Step(obs, None, None, self.t, [float(a) for a in action], float(reward), False)
        step.success = bool(info["is_success"])
        if sim_frame is not None:
            diff = np.abs(obs.astype(np.int16) - sim_frame.astype(np.int16)) * DIFFERENCE_GAIN
            step.simulator, step.difference = sim_frame, np.clip(diff, 0, 255).astype(np.uint8)
            pair = to_unit(torch.from_numpy(np.stack([obs, sim_frame])))
            step.psnr = float(psnr(pair[:1], pair[1:])[0]) if self.t else None  # t 0: given
            step.simulator_reward = None if sim_reward is None else float(sim_reward)
        return step

    def close(self) -> None:
        self.env.close()
        if self.sim is not None:
            self.sim.close()
