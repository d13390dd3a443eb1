"""Tabletop tasks as pure, vectorised functions of the state vector.

The MuJoCo env and the world-model env score with these same functions: the first on
the simulator's state, the second on the state probe's prediction. All functions take
``state`` of shape (..., STATE_DIM) and return arrays of shape (...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.instructions import INSTRUCT_STEPS, instructed_reward, instructed_success
from cosmos_env.sim.instructions import instructed_state_spec as _instructed_spec
from cosmos_env.sim.tabletop_geometry import (  # noqa: F401  (their home for older imports)
    BOWL_RADIUS,
    BOWL_RIM_Z,
    CUBE_HALF,
    TABLE_TOP_Z,
    ZONE_RADIUS,
)


def _xy_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)


def push_success(state: np.ndarray) -> np.ndarray:
    """The cube's centre lies inside the target zone and rests on the table."""
    cube = sl.get(state, "cube_pos")
    in_zone = _xy_dist(cube, sl.get(state, "zone_pos")) < ZONE_RADIUS
    on_table = cube[..., 2] < TABLE_TOP_Z + 3 * CUBE_HALF
    return in_zone & on_table


def push_dense_reward(state: np.ndarray) -> np.ndarray:
    """Negative gripper-to-cube and cube-to-zone distances (metres), plus 1 on success."""
    cube = sl.get(state, "cube_pos")
    reach = np.linalg.norm(sl.get(state, "gripper_pos") - cube, axis=-1)
    place = _xy_dist(cube, sl.get(state, "zone_pos"))
    return -0.5 * reach - place + push_success(state).astype(np.float64)


def pick_place_success(state: np.ndarray) -> np.ndarray:
    """The cube lies inside the bowl (within its radius, below its rim)."""
    cube = sl.get(state, "cube_pos")
    in_bowl = _xy_dist(cube, sl.get(state, "bowl_pos")) < BOWL_RADIUS - CUBE_HALF / 2
    below_rim = cube[..., 2] < TABLE_TOP_Z + BOWL_RIM_Z + CUBE_HALF
    return in_bowl & below_rim


def pick_place_dense_reward(state: np.ndarray) -> np.ndarray:
    """Reach the cube, lift it, bring it over the bowl; plus 1 on success."""
    cube = sl.get(state, "cube_pos")
    reach = np.linalg.norm(sl.get(state, "gripper_pos") - cube, axis=-1)
    lifted = np.clip((cube[..., 2] - CUBE_HALF) / 0.08, 0.0, 1.0)
    carry = _xy_dist(cube, sl.get(state, "bowl_pos"))
    return -0.5 * reach + 0.25 * lifted - carry + pick_place_success(state).astype(np.float64)


@dataclass(frozen=True)
class Task:
    """A task: its name, instruction, time limit and state-based scoring functions;
    ``template`` names the task object ``{object}`` for scenes that draw it anew;
    ``state_spec`` (projection -> StateSpec) describes its states and ``entry_point`` is its
    Gymnasium env class."""

    name: str
    instruction: str
    max_episode_steps: int
    success: callable
    dense_reward: callable
    template: str = "{object}"
    state_spec: callable = sl.tabletop_state_spec
    entry_point: str = "cosmos_env.sim.tabletop_env:TabletopEnv"

    def instruction_for(self, task_object: str) -> str:
        """The instruction for a task object described as ``task_object`` ("blue ball")."""
        return self.template.format(object=task_object)

    def reward(self, state: np.ndarray, sparse: bool = False) -> np.ndarray:
        """Dense shaped reward, or 1.0/0.0 success when ``sparse``; shape (...)."""
        if sparse:
            return self.success(state).astype(np.float64)
        return self.dense_reward(state)


TASKS: dict[str, Task] = {
    "push": Task(
        "push",
        "push the red cube into the green zone",
        50,
        push_success,
        push_dense_reward,
        "push the {object} into the green zone",
    ),
    "pick_place": Task(
        "pick_place",
        "put the red cube in the yellow bowl",
        60,
        pick_place_success,
        pick_place_dense_reward,
        "put the {object} in the yellow bowl",
    ),
    # A new instruction each episode (``sim/instructions.py``), carried in the state.
    "instruct": Task(
        "instruct",
        "follow the episode's instruction",
        INSTRUCT_STEPS,
        instructed_success,
        instructed_reward,
        state_spec=_instructed_spec,
        entry_point="cosmos_env.sim.instructed_env:InstructedTabletopEnv",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown tabletop task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]
