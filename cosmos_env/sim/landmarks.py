"""Landmarks: the world positions of a MuJoCo model's moving bodies, appended to a
Gymnasium world's state so that a world model can be told where an arm's links are.

A joint-space state (``concat(qpos, qvel)``: Reacher's two angles) says where the links are
only through forward kinematics, which a denoiser would have to learn from pixels. With the
bodies' positions in the state (``<body>_pos`` slots, the StateSpec's ``landmarks`` role)
and the rendering camera's projection, the dynamics draws them as keypoint maps, as it does
for the tabletop's gripper and cube. The state track predicts them with the rest of the
state; the world's reward still reads only the qpos/qvel prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from cosmos_env.data.state_spec import StateSlot, StateSpec

MOVES_M = 1e-3  # a body whose position varies by less over the probe rollouts is static


def body_ids(model: mujoco.MjModel, bodies: Sequence[str], env_id: str) -> list[int]:
    ids = []
    for name in bodies:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if body < 1:
            names = [model.body(i).name for i in range(1, model.nbody)]
            raise ValueError(f"{env_id} has no body {name!r} to use as a landmark; it has {names}")
        ids.append(body)
    return ids


def auto_landmarks(env: gym.Env, resets: int = 3, steps: int = 10, seed: int = 0) -> list[str]:
    """The bodies of ``env`` (not the world) whose position moves over a few resets and
    random steps and is not its parent body's position (a link that rotates in place on its
    parent adds no point): named bodies only, in model order."""
    u = env.unwrapped
    model, data = u.model, u.data
    space = env.action_space
    space.seed(seed)
    seen = []
    for r in range(resets):
        env.reset(seed=seed + r)
        for _ in range(steps):
            env.step(space.sample())
            seen.append(data.xpos.copy())
    xpos = np.stack(seen)  # (N, nbody, 3)
    names = []
    for body in range(1, model.nbody):
        name = model.body(body).name
        moves = np.ptp(xpos[:, body], axis=0).max() > MOVES_M
        parent = model.body_parentid[body]
        at_parent = np.abs(xpos[:, body] - xpos[:, parent]).max() < MOVES_M
        if name and moves and not at_parent:
            names.append(name)
    return names


def landmark_spec(spec: StateSpec, bodies: Sequence[str], cameras: dict) -> StateSpec:
    """``spec`` (of ``concat(qpos, qvel)``) with a 3-D position slot ``<body>_pos`` (m) per
    landmark appended, the ``landmarks`` role naming them, and ``cameras``."""
    slots = [*spec.slots, *(StateSlot(f"{b}_pos", 3, "position", "m") for b in bodies)]
    return StateSpec(
        tuple(slots), spec.end_effector, spec.objects, {**spec.cameras, **cameras}, tuple(bodies)
    )


class LandmarkState(gym.Wrapper):
    """Puts the world's state ``concat(qpos, qvel, xpos[landmarks])`` in ``info["state"]``
    at every reset and step, and exposes its ``state_spec`` to the recorder."""

    def __init__(self, env: gym.Env, bodies: Sequence[str], state_spec: StateSpec) -> None:
        super().__init__(env)
        self.state_spec = state_spec
        self._ids = body_ids(env.unwrapped.model, bodies, str(env.spec.id if env.spec else env))

    def state(self) -> np.ndarray:
        u = self.env.unwrapped
        data = u.data
        # After mj_step the body positions are those of the last substep's start: bring
        # them to the final qpos, so the state (and the frame rendered next) agree.
        mujoco.mj_kinematics(u.model, data)
        parts = [data.qpos, data.qvel, data.xpos[self._ids].ravel()]
        return np.concatenate(parts).astype(np.float32)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "state": self.state()}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "state": self.state()}
