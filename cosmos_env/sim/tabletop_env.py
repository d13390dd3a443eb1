"""Gymnasium env of the tabletop world, the ground truth the world model learns."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cosmos_env.data.action_check import validate_action
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.object_names import object_phrase
from cosmos_env.sim.scene import SceneRanges
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC, TabletopWorld
from cosmos_env.sim.tasks import get_task


class TabletopEnv(gym.Env):
    """A Bridge-like tabletop: a floating parallel-jaw gripper, a red cube (the task
    object), optional distractors, a green target zone and a yellow bowl.

    ## Action space
    ``Box(-1, 1, (7,), float32)``: Bridge V2's end-effector delta
    ``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` at 5 Hz, scaled to physical units by
    ``BRIDGE_ACTION_SPEC`` (+-4 cm and +-0.25 rad per step; gripper -1 closed, +1 open).

    ## Observation space
    ``Box(0, 255, (H, W, 3), uint8)``: the fixed front camera. The world-model envs use the
    same space. With ``proprio=True`` the observation is a Dict with ``rgb`` and
    ``proprio`` (gripper position (3) and opening (1), float32).

    ## Rewards
    Dense (default): the task's shaped reward (``tasks.py``); ``sparse_reward=True``: 1.0
    on success else 0.0. Both are functions of the state vector, which ``info["state"]``
    carries (layout: ``state_layout.py``; ``self.state_spec`` describes it as a StateSpec),
    with ``info["is_success"]``.

    ## Scene
    ``scene`` (a `SceneRanges` or its config dict, ``sim/scene.py``) draws each episode's
    object shapes, sizes, colours and count, table and floor colours, light and camera
    jitter; the default is the fixed scene. ``state_spec`` holds the nominal (un-jittered)
    front camera; ``self.world.projection()`` is the current episode's.

    ## Episode end
    Terminated on success when ``terminate_on_success``; truncated by the registered
    ``max_episode_steps`` (push 50, pick_place 60).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        task: str = "push",
        image_size: int = 64,
        n_objects: int = 2,
        sparse_reward: bool = False,
        terminate_on_success: bool = True,
        proprio: bool = False,
        camera: str = "front",
        render_mode: str | None = "rgb_array",
        scene: SceneRanges | dict[str, Any] | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} unsupported; use 'rgb_array'")
        self.task = get_task(task)
        ranges = SceneRanges.from_dict(scene)
        self.world = TabletopWorld(n_objects=n_objects, image_size=image_size, scene=ranges)
        self.sparse_reward = sparse_reward
        self.terminate_on_success = terminate_on_success
        self.proprio = proprio
        self.camera = camera
        self.render_mode = render_mode
        self.action_spec = BRIDGE_ACTION_SPEC
        self.state_names = sl.state_names()
        # only the front camera is fixed to the world; the wrist camera moves with the gripper
        self.state_spec = self.task.state_spec(self.world.projection("front"))
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        frame = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        if proprio:
            proprio_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
            self.observation_space = spaces.Dict({"rgb": frame, "proprio": proprio_space})
        else:
            self.observation_space = frame
        self._frame: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.world.reset(self.np_random)
        return self._get_obs(), self._get_info()

    @property
    def instruction(self) -> str:
        """The task's instruction for this episode: the fixed scene's ("the red cube"), or
        one naming the drawn task object ("push the blue ball into the green zone")."""
        if self.world.scene_ranges.is_default:
            return self.task.instruction
        return self.task.instruction_for(object_phrase(self.world.scene.objects[0]))

    def step(self, action):
        if self._frame is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        action = validate_action(action, self.action_space.shape)
        self.world.apply_action(self.action_spec.scale(action))
        obs, info = self._get_obs(), self._get_info()
        reward = float(self.task.reward(info["state"], sparse=self.sparse_reward))
        terminated = bool(info["is_success"] and self.terminate_on_success)
        return obs, reward, terminated, False, info

    def _get_obs(self):
        self._frame = self.world.render(self.camera)
        if not self.proprio:
            return self._frame
        state = self.world.state()
        proprio = np.r_[sl.get(state, "gripper_pos"), sl.get(state, "gripper_opening")]
        return {"rgb": self._frame, "proprio": proprio.astype(np.float32)}

    def _get_info(self) -> dict[str, Any]:
        state = self.world.state()
        return {"state": state, "is_success": bool(self.task.success(state))}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._frame is None:
            raise RuntimeError("render() called before reset()")
        return self._frame

    def close(self) -> None:
        self.world.close()
