"""The worlds with a simulator, as implementations of the `World` protocol
(``cosmos_env.data.world``): the tabletop tasks and any Gymnasium MuJoCo env
(``gym_world.py``). Their factories are the entry points that world descriptions name:

    {"entry_point": "cosmos_env.sim.worlds:tabletop_world", "kwargs": {"task": "push"}}
    {"entry_point": "cosmos_env.sim.worlds:gym_mujoco_world", "kwargs": {"env_id": "Reacher-v5"}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim.experts import ScriptedExpert
from cosmos_env.sim.gym_world import GymMujocoWorld, gym_mujoco_world
from cosmos_env.sim.instructed_env import object_phrases
from cosmos_env.sim.instructions import decode_instruction, encode_instruction, parse_instruction
from cosmos_env.sim.scene import SceneRanges
from cosmos_env.sim.state_layout import STATE_DIM
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC, TabletopWorld
from cosmos_env.sim.tasks import get_task

__all__ = [
    "GymMujocoWorld",
    "TabletopTaskWorld",
    "build_world",
    "gym_mujoco_world",
    "tabletop_world",
]


def _tabletop_env_id(task: str) -> str:
    from cosmos_env.registration import TASK_IDS

    return f"cosmos_env/Tabletop-{TASK_IDS[task]}-v0"


class TabletopTaskWorld:
    """A tabletop task (``sim/tasks.py``) with ``n_objects`` objects as a `World`: Bridge's
    7-d end-effector action, the tabletop state (``state_layout``) with the front camera's
    projection, and the task's dense reward and success. Nothing terminates an episode but
    success, and only when the env is made with ``terminate_on_success=True``.

    ``scene`` (`SceneRanges` or its config data, ``sim/scene.py``) randomises each
    episode's scene. The description records it only when it is not the fixed default
    scene, so the default world's description stays as it always was. The state spec holds
    the nominal front camera: with camera jitter, an episode's exact camera follows from
    its seed and the description (``TabletopWorld.projection`` after its reset)."""

    has_reward = True
    has_success = True
    has_termination = True

    def __init__(
        self, task: str = "push", n_objects: int = 2, scene: SceneRanges | dict | None = None
    ) -> None:
        self.task = get_task(task)
        self.n_objects = int(n_objects)
        self.scene = SceneRanges.from_dict(scene)
        self.name = f"tabletop-{task}"
        self.action_spec = BRIDGE_ACTION_SPEC
        self.max_episode_steps = self.task.max_episode_steps
        world = TabletopWorld(n_objects=self.n_objects)
        try:  # the nominal front camera: fixed to the table, the same for every layout
            self.state_spec: StateSpec = self.task.state_spec(world.projection("front"))
        finally:
            world.close()
        self._live: dict[int, gym.Env] = {}
        self._object_phrases: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"task": self.task.name, "n_objects": self.n_objects}
        if not self.scene.is_default:
            kwargs["scene"] = self.scene.to_dict()
        return {"entry_point": "cosmos_env.sim.worlds:tabletop_world", "kwargs": kwargs}

    def reward(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray
    ) -> np.ndarray:
        """The task's dense reward of ``next_states`` (N, S): float64 (N,)."""
        self.state_spec.check_state(next_states, "next_states")
        return np.asarray(self.task.dense_reward(np.asarray(next_states)), np.float64)

    def success(self, states: np.ndarray) -> np.ndarray:
        self.state_spec.check_state(states, "states")
        return np.asarray(self.task.success(np.asarray(states)), bool)

    def terminated(self, states: np.ndarray) -> np.ndarray:
        """Never: the tabletop has no failure state; ending on success is the env's
        ``terminate_on_success`` option, in MuJoCo and in the world model alike."""
        self.state_spec.check_state(states, "states")
        return np.zeros(np.shape(states)[:-1], bool)

    def make_env(self, image_size: int, **kwargs: Any) -> gym.Env:
        """``cosmos_env/Tabletop-<Task>-v0`` at ``image_size`` (``kwargs`` go to
        `TabletopEnv`, e.g. ``terminate_on_success``, or to ``gym.make``)."""
        import cosmos_env  # noqa: F401  (registers the tabletop ids)

        scene = {} if self.scene.is_default else {"scene": self.scene.to_dict()}
        kwargs = {"n_objects": self.n_objects, **scene, **kwargs}
        return gym.make(_tabletop_env_id(self.task.name), image_size=image_size, **kwargs)

    def reset(self, seed: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A live reset: the front camera's first frame uint8 (H, W, 3) and state (S,)."""
        if image_size not in self._live:
            self._live[image_size] = self.make_env(image_size)
        env = self._live[image_size]
        _, info = env.reset(seed=int(seed))
        return np.asarray(env.render(), np.uint8), np.asarray(info["state"], np.float32)

    def close(self) -> None:
        for env in self._live.values():
            env.close()
        self._live.clear()

    # ----- instructions (the instructed task): text <-> the state's instruction slots ----

    def instructions(self, states: np.ndarray) -> list[str]:
        """The instruction each instructed state (N, S) carries, as the scene names it."""
        phrases = self.phrases()
        return [decode_instruction(s).text(phrases) for s in np.asarray(states)]

    def instructed(self, states: np.ndarray, texts: list[str]) -> np.ndarray:
        """``states`` (N, S) with their instruction slots set to ``texts`` (N,): a
        ValueError names a text this tabletop does not know."""
        phrases = self.phrases()
        out = np.array(states, np.float32)
        for row, text in zip(out, texts, strict=True):
            row[STATE_DIM:] = encode_instruction(parse_instruction(text, phrases))
        return out

    def phrases(self) -> dict[str, str]:
        """Object slot -> what the fixed scene's camera shows ("cylinder" -> "blue cylinder")."""
        if self.task.name != "instruct":
            raise ValueError(f"world {self.name!r} takes no instructions (task=instruct does)")
        if not self.scene.is_default:
            raise ValueError(
                "a randomised scene names its objects per episode; instructions at the world "
                "level need the fixed scene"
            )
        if self._object_phrases is None:
            world = TabletopWorld(n_objects=self.n_objects)
            try:
                self._object_phrases = object_phrases(world.scene.objects)
            finally:
                world.close()
        return self._object_phrases


def tabletop_world(
    task: str = "push", n_objects: int = 2, scene: dict | None = None
) -> TabletopTaskWorld:
    """The factory a world description names (``cosmos_env.sim.worlds:tabletop_world``)."""
    return TabletopTaskWorld(task, n_objects, scene)


def build_world(cfg: Any) -> TabletopTaskWorld | GymMujocoWorld:
    """The world a `GenerateConfig` records: ``world.name`` tabletop (``task``,
    ``world.n_objects``, ``world.scene``) or gym (``env_id``, ``env_kwargs``, ``camera``,
    ``world.landmarks``)."""
    name = cfg.world.name
    if name == "tabletop":
        return tabletop_world(cfg.task, cfg.world.n_objects, getattr(cfg.world, "scene", None))
    if name == "gym":
        if getattr(cfg.world, "scene", None):
            raise ValueError("world.scene randomises the tabletop's scene; world=gym has none")
        if not cfg.env_id:
            raise ValueError("world=gym needs env_id=<Gymnasium id>, e.g. env_id=Pusher-v5")
        env_kwargs = dict(getattr(cfg, "env_kwargs", None) or {})
        camera = getattr(cfg, "camera", None)
        return gym_mujoco_world(cfg.env_id, env_kwargs, camera, cfg.world.landmarks or ())
    raise ValueError(f"unknown world {name!r}; choose tabletop or gym")


def scripted_policy(world: Any, noise: float, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The world's scripted expert degraded by ``noise`` (0: expert, 1: random), as
    state (S,) -> action in the simulator env's own action space; seeded."""
    if isinstance(world, TabletopTaskWorld):
        return ScriptedExpert(world.task.name, noise, seed=seed).act
    if isinstance(world, GymMujocoWorld):
        from cosmos_env.sim.gym_experts import gym_expert

        return gym_expert(world.env_id, noise, seed=seed).act
    raise ValueError(f"no scripted expert for world {getattr(world, 'name', world)!r}")


def play_policy(world: Any, seed: int, low: np.ndarray, high: np.ndarray) -> Callable:
    """Goal-free play (``sim/play.py``) as state (S,) -> action in the simulator env's own
    action space (bounds ``low``, ``high``): random gripper targets on the tabletop, smooth
    random actions in any other world; seeded."""
    from cosmos_env.sim.play import SmoothRandom, TabletopPlay

    if isinstance(world, TabletopTaskWorld):
        return TabletopPlay(seed).act
    smooth = SmoothRandom(low, high, seed)
    return lambda state: smooth.act(state)
