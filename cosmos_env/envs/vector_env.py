"""The world model as a native Gymnasium vector env: every sub-env advances in one batched
forward of the dynamics model and one batched decode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cosmos_env.data.action_check import validate_action
from cosmos_env.dynamics.release import WorldModel
from cosmos_env.envs.core import WorldModelCore, env_world_model
from cosmos_env.envs.world_model_env import torch_generator
from cosmos_env.precision import AmpSetting


def _check_mask(mask, num_envs: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (num_envs,) or mask.dtype != np.bool_:
        raise ValueError(
            f"options['reset_mask'] must be a bool array of shape ({num_envs},), "
            f"got {mask.dtype} {mask.shape}"
        )
    if not mask.any():
        raise ValueError("options['reset_mask'] selects no sub-env")
    return mask


class WorldModelVectorEnv(VectorEnv):
    """``num_envs`` world-model rollouts stepped as one batch (see ``WorldModelEnv`` for
    spaces, rewards and reset sources). Truncates at ``max_episode_steps`` itself and
    autoresets in ``NEXT_STEP`` (default) or ``SAME_STEP`` mode; in ``SAME_STEP`` the
    ending sub-envs' last observation and info are in ``info["final_obs"]`` /
    ``info["final_info"]``. ``reset(options={"reset_mask": mask})`` resets some sub-envs;
    ``options={"frames": uint8 (M, [k,] H, W, 3)}`` gives their initial frames (and
    ``"states"`` (M, [k,] S) their states, if known). An instruction model (see
    `WorldModelEnv`) takes ``options={"instruction": text or M texts}``; autoresets keep a
    sub-env's given instruction (else take the one its new reset state carries), and
    ``info["instruction"]`` lists every sub-env's.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5, "autoreset_mode": None}

    def __init__(
        self,
        num_envs: int = 1,
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        amp: AmpSetting = "auto",
        compile: bool = False,
        render_mode: str | None = "rgb_array",
        world_model: WorldModel | None = None,
        guidance: float = 1.0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be NEXT_STEP or SAME_STEP")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        wm = world_model or env_world_model(world, checkpoint, backend, tokenizer)
        self.core = WorldModelCore(
            wm,
            num_envs,
            sparse_reward,
            sampler,
            sampler_steps,
            reset_source,
            store,
            amp,
            compile,
            guidance,
        )
        self._given = np.zeros(num_envs, bool)  # rows whose instruction the caller gave
        self.num_envs = num_envs
        self.terminate_on_success = terminate_on_success
        self.max_episode_steps = max_episode_steps or wm.world.max_episode_steps
        self.render_mode = render_mode
        self.action_spec = wm.world.action_spec
        self.state_spec = wm.world.state_spec
        size = self.core.image_size
        self.single_action_space = spaces.Box(-1.0, 1.0, (wm.action_dim,), np.float32)
        self.single_observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._elapsed = np.zeros(num_envs, np.int64)
        self._needs_reset = np.zeros(num_envs, bool)
        self._generator: torch.Generator | None = None

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(
                int(np.random.SeedSequence(seed).generate_state(1)[0])
                if isinstance(seed, list | tuple)
                else seed
            )
        mask = np.ones(self.num_envs, bool)
        if "reset_mask" in options:
            mask = _check_mask(options["reset_mask"], self.num_envs)
        if self._generator is None or seed is not None:
            self._generator = torch_generator(self.np_random)
        instruction = options.get("instruction")
        self._reset_rows(mask, options.get("frames"), options.get("states"), instruction)
        self._given[mask] = instruction is not None
        return self.core.frames.copy(), self._infos(mask)

    def _reset_rows(self, mask: np.ndarray, frames=None, states=None, instruction=None) -> None:
        num = int(mask.sum())
        initial, initial_states = self.core.initial_frames(self.np_random, num, frames, states)
        if instruction is None and self._given[mask].all() and self.core.follows_text:
            instruction = [self.core.instructions[i] for i in np.flatnonzero(mask)]
        self.core.reset_rows(mask, initial, initial_states, instruction)
        self._elapsed[mask] = 0
        self._needs_reset[mask] = False

    def step(self, actions):
        if self._generator is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        actions = validate_action(
            actions, (self.num_envs, *self.single_action_space.shape), self.action_spec.names
        )
        resetting = self._needs_reset.copy()  # NEXT_STEP: these sub-envs reset instead
        self.core.step(actions, self._generator)
        self._elapsed += 1
        rewards = self.core.reward()
        success = self.core.success()
        terminated = (success & self.terminate_on_success) | self.core.terminal()
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        infos = self._infos(np.ones(self.num_envs, bool))
        if resetting.any():
            self._reset_rows(resetting)
            rewards[resetting], terminated[resetting], truncated[resetting] = 0.0, False, False
            infos = self._infos(np.ones(self.num_envs, bool))
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        elif done.any():  # SAME_STEP
            infos["final_obs"] = np.array([None] * self.num_envs, dtype=object)
            for i in np.flatnonzero(done):
                infos["final_obs"][i] = self.core.frames[i].copy()
            infos["_final_obs"] = done.copy()
            infos["final_info"] = {**self._infos(done), "_state": done, "_is_success": done}
            infos["_final_info"] = done.copy()
            self._reset_rows(done)
            infos.update(self._infos(np.ones(self.num_envs, bool)))
        return self.core.frames.copy(), rewards, terminated, truncated, infos

    def _infos(self, mask: np.ndarray) -> dict[str, Any]:
        infos = {
            "state": self.core.states.copy(),
            "_state": mask.copy(),
            "is_success": self.core.success(),
            "_is_success": mask.copy(),
        }  # which source scored each quantity: env.unwrapped.core.scorer.sources
        if self.core.follows_text:
            infos["instruction"] = np.array(self.core.instructions, dtype=object)
            infos["_instruction"] = mask.copy()
        return infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        return self.core.frames.copy()

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()
