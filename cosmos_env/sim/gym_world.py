"""Any Gymnasium MuJoCo env as a `World`: its action and state specs, and reward and
termination computed from states ``concat(qpos, qvel)`` with the env's own functions.

States are scored on a scratch instance of the env: each row is written with
``set_state(qpos, qvel)`` (which runs ``mj_forward``, so body positions follow the joints)
and the env's own ``_get_rew(action)`` (Gymnasium v5 Reacher and Pusher) or healthy check
(Hopper, Walker2d, Ant, Humanoid) reads it. Envs whose reward needs more than the state and
the action (a forward velocity between two states: HalfCheetah, Hopper...) have no reward
here (``has_reward`` False; an env scores them with learned heads). Gymnasium envs define
no success.

Gymnasium computes a step's reward before refreshing the kinematics: the body positions it
reads are those of the last RK4 stage, not of the final state. So the reward of a recorded
state differs from the reward the env returned by a term that grows with the joint speeds
(about 1e-6 at a reaching arm's speed, up to about 1e-3 under random torques on Reacher).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim.camera import rendered_projection
from cosmos_env.sim.landmarks import LandmarkState, auto_landmarks, body_ids, landmark_spec
from cosmos_env.sim.recorder import action_spec_of, state_spec_of

# Gymnasium MuJoCo envs whose step always returns terminated=False.
_NEVER_TERMINATE = frozenset(
    f"gymnasium.envs.mujoco.{module}"
    for module in (
        "reacher_v5.ReacherEnv",
        "pusher_v5.PusherEnv",
        "half_cheetah_v5.HalfCheetahEnv",
        "swimmer_v5.SwimmerEnv",
        "humanoidstandup_v5.HumanoidStandupEnv",
    )
)


def _check_env(env: gym.Env, env_id: str) -> None:
    """Refuse an env without a bounded 1-d Box action space or without MuJoCo state."""
    space = env.action_space
    bounded = isinstance(space, gym.spaces.Box) and len(space.shape) == 1
    if not bounded or not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(
            f"{env_id} has action space {space}; a Gymnasium world needs a bounded 1-d Box"
        )
    u = env.unwrapped
    if getattr(u, "model", None) is None or not hasattr(getattr(u, "data", None), "qpos"):
        raise ValueError(
            f"{env_id} ({type(u).__name__}) is not a MuJoCo env (no unwrapped.model/data); "
            "a Gymnasium world reads its state as concat(qpos, qvel)"
        )


def _camera_view(model: mujoco.MjModel, camera: str | int | None, env_id: str) -> dict:
    """``gym.make``'s camera argument for ``camera``: a name, or an id (-1: the free
    camera); a camera the model lacks raises here (MuJoCo would abort the process)."""
    if camera is None:
        return {}
    names = [model.camera(i).name for i in range(model.ncam)]
    try:
        cam_id = int(camera)
    except ValueError:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, str(camera)) < 0:
            raise ValueError(
                f"{env_id} has no camera {camera!r}; its cameras are {names} (or an id, -1 "
                "for the free camera)"
            ) from None
        return {"camera_name": str(camera)}
    if not -1 <= cam_id < model.ncam:
        raise ValueError(
            f"{env_id} has no camera id {cam_id}: it has {model.ncam} ({names}); -1 is the "
            "free camera"
        )
    return {"camera_id": cam_id}


def _takes_only_action(method: Any) -> bool:
    try:
        params = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return False
    return params == ["action"]


class GymMujocoWorld:
    """The Gymnasium MuJoCo env ``env_id`` (made with ``env_kwargs``) as a `World`.

    Actions are in the env's own units (its Box); states (N, S) are ``concat(qpos, qvel)``,
    then the world positions of the ``landmarks`` bodies (``sim/landmarks.py``; ``"auto"``:
    every moving body, ``()``: none), with the rendered view's projection in the StateSpec
    when that view is fixed. ``camera`` (a camera name, or an id as a number) selects the
    rendered view; None is the env's default camera.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        camera: str | int | None = None,
        landmarks: str | Sequence[str] = (),
    ) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.camera = camera
        self._scratch = gym.make(env_id, **self.env_kwargs)  # scores states; never rendered
        try:
            _check_env(self._scratch, env_id)
        except ValueError:
            self._scratch.close()
            raise
        u = self._sim
        self.name = f"gym:{env_id}"
        self.action_spec: ActionSpec = action_spec_of(self._scratch)
        self.state_spec: StateSpec = state_spec_of(self._scratch, u.model.nq + u.model.nv)
        self._view = _camera_view(u.model, camera, env_id)
        if landmarks == "auto":
            landmarks = auto_landmarks(self._scratch)
        self.landmarks = [str(b) for b in landmarks]
        body_ids(u.model, self.landmarks, env_id)  # a body the model lacks raises here
        if self.landmarks:
            self.state_spec = landmark_spec(self.state_spec, self.landmarks, self._cameras())
        spec = self._scratch.spec
        self.max_episode_steps = int(spec.max_episode_steps or 1000)  # 1000: gym MuJoCo default
        self.has_reward = _takes_only_action(getattr(u, "_get_rew", None))
        qualname = f"{type(u).__module__}.{type(u).__qualname__}"
        self._never_terminates = qualname in _NEVER_TERMINATE
        self._healthy_check = hasattr(type(u), "is_healthy") and hasattr(
            u, "_terminate_when_unhealthy"
        )
        self._terminated_property = isinstance(getattr(type(u), "terminated", None), property)
        self.has_termination = (
            self._never_terminates or self._healthy_check or self._terminated_property
        )
        self.has_success = False
        self._live: dict[int, gym.Env] = {}

    @property
    def _sim(self) -> Any:
        return self._scratch.unwrapped

    def _cameras(self) -> dict[str, list[float]]:
        """{view name: its projection} when the rendered view is fixed, else {}."""
        env = self.make_env(16, landmarks=False)
        try:
            env.reset(seed=0)
            projection = rendered_projection(env)
        finally:
            env.close()
        name = "default" if self.camera is None else str(self.camera)
        return {} if projection is None else {name: projection.ravel().tolist()}

    def describe(self) -> dict[str, Any]:
        kwargs = {"env_id": self.env_id, "env_kwargs": self.env_kwargs, "camera": self.camera}
        if self.landmarks:  # a description without them rebuilds the qpos/qvel world
            kwargs["landmarks"] = list(self.landmarks)
        return {"entry_point": "cosmos_env.sim.worlds:gym_mujoco_world", "kwargs": kwargs}

    # -- scoring states -----------------------------------------------------------------
    def _set(self, state: np.ndarray) -> None:
        nq, nv = self._sim.model.nq, self._sim.model.nv
        state = np.asarray(state, np.float64)  # the landmarks after qvel follow from qpos
        self._sim.set_state(state[:nq], state[nq : nq + nv])

    def _rows(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, np.float64)
        self.state_spec.check_state(states, f"{self.env_id} states")
        return states.reshape(-1, self.state_spec.dim)

    def reward(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray
    ) -> np.ndarray:
        """The env's ``_get_rew(action)`` in each of ``next_states`` (N, S), for actions
        (N, A) in the env's units; float64 (N,). ``states`` is not needed."""
        if not self.has_reward:
            raise NotImplementedError(
                f"{self.env_id}'s reward needs more than the state and action (has_reward "
                "is False): score it with a learned reward head"
            )
        rows = self._rows(next_states)
        actions = np.asarray(actions, np.float64).reshape(len(rows), -1)
        out = np.empty(len(rows))
        for i, (state, action) in enumerate(zip(rows, actions, strict=True)):
            self._set(state)
            result = self._sim._get_rew(action)
            out[i] = float(result[0] if isinstance(result, tuple) else result)
        return out

    def terminated(self, states: np.ndarray) -> np.ndarray:
        """Whether the env ends its episode in each state (N, S): bool (N,)."""
        rows = self._rows(states)
        if self._never_terminates:
            return np.zeros(len(rows), bool)
        if not self.has_termination:
            raise NotImplementedError(
                f"{self.env_id}'s termination is not a function of its state here "
                "(has_termination is False): score it with a learned head"
            )
        out = np.empty(len(rows), bool)
        for i, state in enumerate(rows):
            self._set(state)
            u = self._sim
            if self._terminated_property:
                out[i] = bool(u.terminated)
            else:
                out[i] = (not u.is_healthy) and bool(u._terminate_when_unhealthy)
        return out

    def success(self, states: np.ndarray) -> np.ndarray:
        raise NotImplementedError(
            f"{self.env_id} defines no success (has_success is False): Gymnasium envs have none"
        )

    # -- the simulator ------------------------------------------------------------------
    def make_env(self, image_size: int, landmarks: bool = True, **kwargs: Any) -> gym.Env:
        """``gym.make(env_id, render_mode="rgb_array")`` at ``image_size`` with the world's
        camera and env_kwargs (``kwargs`` override them), shadows off; wrapped to put the
        world's state (with the landmarks' positions) in ``info["state"]`` unless
        ``landmarks`` is False or the world has none."""
        env = gym.make(
            self.env_id,
            render_mode="rgb_array",
            width=image_size,
            height=image_size,
            **self._view,
            **{**self.env_kwargs, **kwargs},
        )
        env.unwrapped.model.vis.quality.shadowsize = 0  # ~5x faster renders on llvmpipe
        if landmarks and self.landmarks:
            env = LandmarkState(env, self.landmarks, self.state_spec)
        return env

    def reset(self, seed: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A live reset: the first frame uint8 (H, W, 3) and state float32 (S,)."""
        if image_size not in self._live:
            self._live[image_size] = self.make_env(image_size)
        env = self._live[image_size]
        _, info = env.reset(seed=int(seed))
        data = env.unwrapped.data
        state = info.get("state", np.concatenate([data.qpos, data.qvel]).astype(np.float32))
        return np.ascontiguousarray(env.render(), dtype=np.uint8), state

    def close(self) -> None:
        for env in self._live.values():
            env.close()
        self._live.clear()


def gym_mujoco_world(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    camera: str | int | None = None,
    landmarks: str | Sequence[str] = (),
) -> GymMujocoWorld:
    """The factory a world description names (``cosmos_env.sim.worlds:gym_mujoco_world``)."""
    return GymMujocoWorld(env_id, env_kwargs, camera, landmarks)
