"""The action-conditioned world model as a Gymnasium env: ``step(action)`` returns the
frame the world model predicts."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import WorldModelCore, env_world_model
from cosmos_env.precision import AmpSetting
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.action_check import validate_action
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from a numpy one: same env seed, same frames."""
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


class WorldModelEnv(gym.Env):
    """A learned world model of the tabletop, stepping like the MuJoCo ``TabletopEnv``.

    ## Action space
    ``Box(-1, 1, (7,), float32)``, the same as the MuJoCo env: Bridge's end-effector delta
    ``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` at 5 Hz (``BRIDGE_ACTION_SPEC``).

    ## Observation space
    ``Box(0, 255, (64, 64, 3), uint8)``: the predicted front-camera frame (the tokenizer's
    decoding of the predicted latent).

    ## Rewards and success
    The task's functions (``sim/tasks.py``) on the world model's task state: its state
    track (a learned state dynamics stepped beside the frames, which are drawn to match
    it), or for models without one the state the probe reads from the predicted latent;
    ``info`` carries that ``state`` and ``is_success``.

    ## Starting state
    ``reset_source="store"`` (default): the first frame of a held-out episode (shipped with
    the checkpoint, or of ``store=PATH``); ``"mujoco"``: a live reset of the MuJoCo env;
    ``"frames"``: ``reset(options={"frames": uint8 (k, 64, 64, 3)})`` (any source accepts
    that option, optionally with ``"states"`` (k, 36), the frames' true task states). Store
    and MuJoCo resets start the state track from the true state; caller frames without
    states start it from the probe's reading. Same seed and actions give the same frames.

    ## Precision
    ``amp="auto"`` (default) runs the dynamics under bf16 autocast only where the CPU has
    bf16 natively (``cosmos_env.precision``), float32 elsewhere; ``True`` / ``False`` force
    it. ``env.unwrapped.core.amp`` holds the resolved choice.

    ## Episode end
    Terminated on success when ``terminate_on_success``; truncated by the registered
    ``max_episode_steps`` (the MuJoCo task's time limit).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        task: str = "push",
        checkpoint: str | None = None,
        backend: str | None = None,
        tokenizer: str | None = None,
        sampler: str | None = None,
        sampler_steps: int | None = None,
        reset_source: str = "store",
        store: str | None = None,
        sparse_reward: bool = False,
        terminate_on_success: bool = True,
        amp: AmpSetting = "auto",
        render_mode: str | None = "rgb_array",
        world_model: WorldModel | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} unsupported; use 'rgb_array'")
        wm = world_model or env_world_model(task, checkpoint, backend, tokenizer)
        self.core = WorldModelCore(
            wm, 1, task, sparse_reward, sampler, sampler_steps, reset_source, store, amp
        )
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.action_spec = BRIDGE_ACTION_SPEC
        self.state_names = sl.state_names()
        size = self.core.image_size
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self._generator: torch.Generator | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        frames, states = (options or {}).get("frames"), (options or {}).get("states")
        if frames is not None:
            frames = np.asarray(frames)[None]
        if states is not None:
            states = np.asarray(states)[None]
        initial, initial_states = self.core.initial_frames(self.np_random, 1, frames, states)
        self._generator = torch_generator(self.np_random)
        self.core.reset_rows(np.ones(1, bool), initial, initial_states)
        return self.core.frames[0].copy(), self._info()

    def step(self, action):
        if self._generator is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        action = validate_action(action, self.action_space.shape)
        self.core.step(action[None], self._generator)
        info = self._info()
        reward = float(self.core.reward()[0])
        terminated = bool(info["is_success"] and self.terminate_on_success)
        return self.core.frames[0].copy(), reward, terminated, False, info

    def _info(self) -> dict[str, Any]:
        return {"state": self.core.states[0].copy(), "is_success": bool(self.core.success()[0])}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._generator is None:
            raise RuntimeError("render() called before reset()")
        return self.core.frames[0].copy()

    def close(self) -> None:
        self.core.close()
