"""Record the episodes of any Gymnasium env with ``rgb_array`` rendering into the store.

The wrapper watches ``reset``/``step`` and, when an episode ends, hands its rows to a sink
(an `EpisodeStore` or any callable). Rows follow the store contract: ``rgb[t]``,
``state[t]``, ``action[t]`` = the action taken after observing ``rgb[t]`` (normalised to
[-1, 1] by the action space's bounds), ``reward[t]`` = the reward received on arriving at
``rgb[t]`` (0 on the first row); the last row has a zero padding action and ``is_last``.
``is_terminal[t]`` is True on the row the env returned ``terminated=True`` for (not on a
truncation), ``is_success[t]`` is the env's ``info["is_success"]`` (False where it reports
none). `features_for` gives the schema of these rows.

State: the tabletop envs' task state (``info["state"]``); for Gymnasium's MuJoCo envs,
``concat(qpos, qvel)`` of the simulator. `state_spec_of` describes it: the env's own
``state_spec``, else, for a MuJoCo env, one slot per joint's qpos part and then per joint's
qvel part, named after the joints; else one flat slot per dim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import gymnasium as gym
import mujoco  # MUJOCO_GL was set by cosmos_env/__init__.py, imported first
import numpy as np

from cosmos_env.data.spec import ActionSpec, FeatureSpec, standard_features
from cosmos_env.data.state_spec import StateSlot, StateSpec

EpisodeSink = Callable[[dict[str, np.ndarray], str, str], Any]
FLAG_KEYS = ("is_terminal", "is_success")  # per-row bools the recorder adds to the schema


def _box_bounds(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    space = env.action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"the recorder needs a 1-d Box action space, got {space}")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"the recorder needs a bounded action space, got {space}")
    return space.low.astype(np.float64), space.high.astype(np.float64)


def action_spec_of(env: gym.Env) -> ActionSpec:
    """The env's own action spec if it has one (tabletop), else one built from its Box."""
    spec = getattr(env.unwrapped, "action_spec", None)
    if isinstance(spec, ActionSpec):
        return spec
    low, high = _box_bounds(env)
    names = tuple(f"a{i}" for i in range(len(low)))
    return ActionSpec(names, ("native",) * len(low), tuple(low), tuple(high))


def _mujoco_state(env: gym.Env) -> np.ndarray:
    data = getattr(env.unwrapped, "data", None)
    if data is None or not hasattr(data, "qpos"):
        raise ValueError(
            f"{env.unwrapped} exposes neither info['state'] nor a MuJoCo `data`: "
            "the recorder cannot read its state"
        )
    return np.concatenate([data.qpos, data.qvel]).astype(np.float32)


def state_names_of(env: gym.Env, state_dim: int) -> tuple[str, ...]:
    names = getattr(env.unwrapped, "state_names", None)
    if names is not None and len(names) == state_dim:
        return tuple(names)
    model = getattr(env.unwrapped, "model", None)
    if model is not None and model.nq + model.nv == state_dim:
        return tuple(f"qpos{i}" for i in range(model.nq)) + tuple(
            f"qvel{i}" for i in range(model.nv)
        )
    return tuple(f"s{i}" for i in range(state_dim))


def state_spec_of(env: gym.Env, state_dim: int | None = None) -> StateSpec:
    """What the recorded state of ``env`` is (see the module docstring). `state_dim` (the
    recorded state's size) is only needed for a flat spec of an env without ``state_names``;
    without it such an env is reset to read one state."""
    u = env.unwrapped
    try:  # a wrapper's (a Gymnasium world with landmarks), else the env's own
        spec = env.get_wrapper_attr("state_spec")
    except AttributeError:
        spec = None
    if isinstance(spec, StateSpec):
        return spec
    model, names = getattr(u, "model", None), getattr(u, "state_names", None)
    if names is None and isinstance(model, mujoco.MjModel):  # it records concat(qpos, qvel)
        spec = mujoco_state_spec(model)
        if spec is not None:
            return spec
    if state_dim is None:
        state_dim = (
            len(names) if names is not None else read_state(env, env.reset(seed=0)[1]).shape[0]
        )
    return StateSpec.flat(state_names_of(env, state_dim))


# per MuJoCo joint type: its qpos slots (name suffix, size, kind, unit), qvel size, qvel unit
_JOINT_PARTS = {
    mujoco.mjtJoint.mjJNT_FREE: (
        (("_pos", 3, "position", "m"), ("_quat", 4, "quaternion", "")),
        6,
        "m/s, rad/s",
    ),
    mujoco.mjtJoint.mjJNT_BALL: ((("_quat", 4, "quaternion", ""),), 3, "rad/s"),
    mujoco.mjtJoint.mjJNT_SLIDE: ((("", 1, "joint", "m"),), 1, "m/s"),
    mujoco.mjtJoint.mjJNT_HINGE: ((("", 1, "joint", "rad"),), 1, "rad/s"),
}


def mujoco_state_spec(model: mujoco.MjModel) -> StateSpec | None:
    """The spec of ``concat(qpos, qvel)``: each joint's qpos slots in joint order (free:
    ``<name>_pos`` and ``<name>_quat`` (w, x, y, z); ball: ``<name>_quat``; hinge/slide:
    ``<name>``), then each joint's velocity ``<name>_vel`` (free: 6, linear then angular).
    Unnamed joints are ``joint<i>``. None when the joints do not cover nq + nv in order or
    their names clash."""
    qpos: list[StateSlot] = []
    qvel: list[StateSlot] = []
    try:
        for j in range(model.njnt):
            name = (model.joint(j).name or f"joint{j}").replace(".", "_")
            parts, dof, vel_unit = _JOINT_PARTS[mujoco.mjtJoint(model.jnt_type[j])]
            if model.jnt_qposadr[j] != sum(s.size for s in qpos):
                return None
            if model.jnt_dofadr[j] != sum(s.size for s in qvel):
                return None
            qpos += [StateSlot(name + suffix, n, kind, unit) for suffix, n, kind, unit in parts]
            qvel.append(StateSlot(f"{name}_vel", dof, "velocity", vel_unit))
        spec = StateSpec((*qpos, *qvel))
    except ValueError:  # duplicate slot names, or no joints at all
        return None
    return spec if spec.dim == model.nq + model.nv else None


def features_for(env: gym.Env, image_size: int) -> dict[str, FeatureSpec]:
    """The store schema that recording ``env`` at ``image_size`` produces: the standard
    features (state named by `state_spec_of`) and bool ``is_terminal``, ``is_success``."""
    _, info = env.reset(seed=0)
    state = read_state(env, info)
    spec = action_spec_of(env)
    features = standard_features(
        image_size,
        image_size,
        state.shape[0],
        spec.dim,
        state_spec_of(env, state.shape[0]).dim_names(),
        spec.names,
    )
    for key in FLAG_KEYS:
        features[key] = FeatureSpec(key, "bool", ())
    return features


def render_frame(env: gym.Env, size: int) -> np.ndarray:
    """``env``'s rendered frame as uint8 (size, size, 3), resized with INTER_AREA where the
    renderer gives another size."""
    frame = np.asarray(env.render(), np.uint8)
    if frame.shape[:2] != (size, size):
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return frame


def read_state(env: gym.Env, info: dict) -> np.ndarray:
    if "state" in info:
        return np.asarray(info["state"], dtype=np.float32)
    return _mujoco_state(env)


class EpisodeRecorder(gym.Wrapper):
    """Wrap ``env`` and send each finished episode to ``sink(episode, instruction, source_id)``.

    Args:
        env: any env whose ``render()`` returns an RGB frame (``render_mode="rgb_array"``).
        sink: ``EpisodeStore.append_episode`` or any callable with that signature.
        image_size: frames are resized (area interpolation) to (image_size, image_size).
        instruction: the language instruction stored with every episode.
        source: prefix of each episode's source id (``<source>/seed<k>/ep<n>``).
    """

    def __init__(
        self,
        env: gym.Env,
        sink: EpisodeSink,
        image_size: int = 64,
        instruction: str = "",
        source: str = "",
    ) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"record an env made with render_mode='rgb_array', not {env.render_mode!r}"
            )
        self.sink = sink
        self.image_size = image_size
        self.instruction = instruction
        self.source = source
        self._low, self._high = _box_bounds(env)
        self._rows: dict[str, list] | None = None
        self._seed: int | None = None
        self._count = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._seed = seed
        self._rows = {key: [] for key in ("rgb", "state", "action", "reward", *FLAG_KEYS)}
        self._add_row(info, reward=0.0, terminated=False)
        return obs, info

    def step(self, action):
        if self._rows is None:
            raise RuntimeError("step() called before reset(): call env.reset(seed=...) first")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._rows["action"].append(self._normalise(action))
        self._add_row(info, reward=float(reward), terminated=bool(terminated))
        if terminated or truncated:
            self._flush()
        return obs, reward, terminated, truncated, info

    def _normalise(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        return (2.0 * (a - self._low) / (self._high - self._low) - 1.0).astype(np.float32)

    def _add_row(self, info: dict, reward: float, terminated: bool) -> None:
        frame = render_frame(self.env, self.image_size)
        self._rows["rgb"].append(np.ascontiguousarray(frame))
        self._rows["state"].append(read_state(self.env, info))
        self._rows["reward"].append(reward)
        self._rows["is_terminal"].append(terminated)
        self._rows["is_success"].append(bool(info.get("is_success", False)))

    def _flush(self) -> None:
        rows = self._rows
        rows["action"].append(np.zeros_like(rows["action"][0]))  # padding action of the last row
        n = len(rows["rgb"])
        episode = {
            "rgb": np.stack(rows["rgb"]),
            "state": np.stack(rows["state"]),
            "action": np.stack(rows["action"]),
            "reward": np.asarray(rows["reward"], dtype=np.float32),
            "is_terminal": np.asarray(rows["is_terminal"], dtype=bool),
            "is_success": np.asarray(rows["is_success"], dtype=bool),
            "is_first": np.arange(n) == 0,
            "is_last": np.arange(n) == n - 1,
        }
        source_id = f"{self.source}/seed{self._seed}/ep{self._count}"
        # A randomised tabletop names this episode's task object; other envs have none.
        live = getattr(self.env.unwrapped, "instruction", None)
        instruction = live if isinstance(live, str) and live else self.instruction
        self.sink(episode, instruction, source_id)
        self._count += 1
        self._rows = None
