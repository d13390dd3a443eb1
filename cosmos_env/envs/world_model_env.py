"""The action-conditioned world model of any world as a Gymnasium env: ``step(action)``
returns the frame the world model predicts."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from cosmos_env.data.action_check import validate_action
from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import WorldModelCore, env_world_model
from cosmos_env.precision import AmpSetting


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from a numpy one: same env seed, same frames."""
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


class WorldModelEnv(gym.Env):
    """A learned world model of a world, stepping like that world's simulator env.

    ``gymnasium.make("cosmos_env/WorldModel-v0", checkpoint=DIR)`` runs any release;
    per-world ids (``cosmos_env/WorldModel-Tabletop-Push-v0``, ...) load the shipped one and
    refuse a checkpoint of another world.

    ## Action space
    ``Box(-1, 1, (A,), float32)``: the release's action spec (``env.action_spec``) scales
    them to the world's physical units, e.g. Bridge's end-effector delta
    ``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` at 5 Hz for the tabletop.

    ## Observation space
    ``Box(0, 255, (H, W, 3), uint8)``: the predicted camera frame (the tokenizer's decoding
    of the predicted latent), at the release's image size.

    ## Rewards, success and termination
    The world's own functions of the world model's state (its state track, or the probe's
    reading of the predicted latent) where the world defines them (the tabletop's tasks; a
    Gymnasium MuJoCo env's reward computed from predicted qpos/qvel), else the release's
    learned heads (``envs/scoring.py``). ``info`` carries ``state``, ``is_success`` and
    ``score_sources`` (which source scored reward, success and termination).

    ## Starting state
    ``reset_source="store"`` (default): the first frame of a held-out episode (shipped with
    the checkpoint, or of ``store=PATH``); ``"sim"`` (or ``"mujoco"``): a live reset of the
    world's simulator (worlds with one); ``"frames"``: ``reset(options={"frames": uint8
    (k, H, W, 3)})`` (any source accepts that option, optionally with ``"states"`` (k, S),
    the frames' true states). Store and simulator resets start the state track from the
    true state; caller frames without states start it from the probe's reading. Same seed
    and actions give the same frames.

    ## Instructions
    A release trained with instructions (``dynamics.text``) follows the one of
    ``reset(options={"instruction": text})``, or else the one its reset state carries (the
    instructed tabletop's state names it); the text passes the pre-guard first (a refused
    one raises ``TextRefused``, nothing is generated) and ``info["instruction"]`` carries
    it. ``guidance`` > 1 is classifier-free guidance on the instruction and the actions.

    ## Precision
    ``amp="auto"`` (default) runs the dynamics under bf16 autocast only where the CPU has
    bf16 natively (``cosmos_env.precision``), float32 elsewhere; ``True`` / ``False`` force
    it. ``env.unwrapped.core.amp`` holds the resolved choice. ``compile=True`` compiles a
    copy of the diffusion network with ``torch.compile`` (the world model given is left as
    it was): the first steps pay a one-off compile (seconds to a minute; cached on disk),
    later ones run fused kernels. It pays in long batched runs (``benchmarks/env_speed.py``).

    ## Episode end
    Terminated where the world (or its learned head) says the episode ends, and on success
    when ``terminate_on_success``; truncated after ``max_episode_steps`` (default: the
    world's time limit recorded in the release).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        checkpoint: str | None = None,
        world: str | None = None,
        backend: str | None = None,
        tokenizer: str | None = None,
        sampler: str | None = None,
        sampler_steps: int | None = None,
        reset_source: str = "store",
        store: str | None = None,
        sparse_reward: bool = False,
        terminate_on_success: bool = True,
        max_episode_steps: int | None = None,
        amp: AmpSetting = "auto",
        compile: bool = False,
        render_mode: str | None = "rgb_array",
        world_model: WorldModel | None = None,
        guidance: float = 1.0,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} unsupported; use 'rgb_array'")
        wm = world_model or env_world_model(world, checkpoint, backend, tokenizer)
        self.core = WorldModelCore(
            wm,
            1,
            sparse_reward,
            sampler,
            sampler_steps,
            reset_source,
            store,
            amp,
            compile,
            guidance,
        )
        self.terminate_on_success = terminate_on_success
        self.max_episode_steps = max_episode_steps or wm.world.max_episode_steps
        self.render_mode = render_mode
        self.action_spec = wm.world.action_spec
        self.state_spec = wm.world.state_spec
        self.state_names = self.state_spec.dim_names()
        size = self.core.image_size
        self.action_space = spaces.Box(-1.0, 1.0, (wm.action_dim,), np.float32)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self._generator: torch.Generator | None = None
        self._elapsed = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        frames, states = (options or {}).get("frames"), (options or {}).get("states")
        if frames is not None:
            frames = np.asarray(frames)[None]
        if states is not None:
            states = np.asarray(states)[None]
        initial, initial_states = self.core.initial_frames(self.np_random, 1, frames, states)
        self._generator = torch_generator(self.np_random)
        instruction = (options or {}).get("instruction")
        self.core.reset_rows(np.ones(1, bool), initial, initial_states, instruction)
        self._elapsed = 0
        return self.core.frames[0].copy(), self._info()

    def step(self, action):
        if self._generator is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        action = validate_action(action, self.action_space.shape, self.action_spec.names)
        self.core.step(action[None], self._generator)
        self._elapsed += 1
        info = self._info()
        reward = float(self.core.reward()[0])
        success = info["is_success"] and self.terminate_on_success
        terminated = bool(success or self.core.terminal()[0])
        truncated = not terminated and self._elapsed >= self.max_episode_steps
        return self.core.frames[0].copy(), reward, terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        info = {
            "state": self.core.states[0].copy(),
            "is_success": bool(self.core.success()[0]),
            "score_sources": dict(self.core.scorer.sources),
        }
        if self.core.follows_text:
            info["instruction"] = self.core.instructions[0]
        return info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._generator is None:
            raise RuntimeError("render() called before reset()")
        return self.core.frames[0].copy()

    def close(self) -> None:
        self.core.close()
