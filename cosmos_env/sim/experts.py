"""Scripted experts for the tabletop tasks.

They read privileged state (the simulator's, or the state probe's prediction in the
world model) and are stateless: every action is a function of the current state, so an
expert recovers from a slipped cube or a failed grasp without a phase machine. ``noise``
grades them from expert (0) to uniformly random (1) for the policy-evaluation benchmark.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.instructions import Instruction, decode_instruction
from cosmos_env.sim.tasks import CUBE_HALF, get_task

MAX_STEP = 0.04  # metres per action at full scale (BRIDGE_ACTION_SPEC)
MAX_TURN = 0.25  # radians per action at full scale
SAFE_Z = 0.085  # gripper height that clears every object
PUSH_Z = 0.026
GRASP_Z = 0.028  # gripper height whose finger tips clear the table beside the cube
OPEN, CLOSE = 1.0, -1.0


def _yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _yaw_error(desired: float, current: float, period: float, limit: float = np.pi / 2) -> float:
    """Turn from ``current`` to the nearest of ``desired + k * period`` that the gripper's
    yaw limit (+-``limit``) allows, so a symmetric target never drives it into the stop."""
    candidates = [desired + k * period for k in range(-4, 5)]
    reachable = [c for c in candidates if abs(c) <= limit + 1e-6] or candidates
    return float(min(reachable, key=lambda c: abs(c - current)) - current)


def move_towards(gripper: np.ndarray, target: np.ndarray, yaw_error: float, grip: float):
    action = np.zeros(7)
    action[:3] = np.clip((target - gripper) / MAX_STEP, -1.0, 1.0)
    action[5] = np.clip(yaw_error / MAX_TURN, -1.0, 1.0)
    action[6] = grip
    return action


def push_object(state: np.ndarray, obj: str, goal: np.ndarray) -> np.ndarray:
    """Closed-gripper push of object slot ``obj`` along the line from it to the table
    point ``goal`` (x, y); (7,) in [-1, 1]."""
    g = sl.get(state, "gripper_pos").astype(np.float64)
    cube = sl.get(state, f"{obj}_pos").astype(np.float64)
    zone = np.asarray(goal, np.float64)
    to_zone = zone - cube[:2]
    direction = to_zone / max(np.linalg.norm(to_zone), 1e-6)
    # Face the push direction with the fingers' closed side (gripper x axis along it).
    desired_yaw = float(np.arctan2(direction[1], direction[0]))
    yaw_error = _yaw_error(desired_yaw, _yaw(sl.get(state, "gripper_quat")), np.pi)
    rel = g[:2] - cube[:2]
    behind = float(rel @ direction)
    lateral = float(rel @ np.array([-direction[1], direction[0]]))
    pre_push = cube[:2] - direction * (CUBE_HALF + 0.03)
    lined_up = abs(lateral) < 0.012 and -0.075 < behind < -0.015 and abs(yaw_error) < 0.3
    if lined_up and g[2] < PUSH_Z + 0.008:  # only push once down, never diagonally onto it
        remaining = np.linalg.norm(to_zone)
        target_xy = cube[:2] + direction * min(0.04, remaining + 0.01)
        return move_towards(g, np.r_[target_xy, PUSH_Z], yaw_error, CLOSE)
    far = np.linalg.norm(g[:2] - pre_push) > 0.012
    if far:
        if g[2] < SAFE_Z - 0.02 and np.linalg.norm(rel) < 0.09:
            return move_towards(g, np.r_[g[:2], SAFE_Z], yaw_error, CLOSE)  # lift clear first
        return move_towards(g, np.r_[pre_push, SAFE_Z], yaw_error, CLOSE)
    # Descend beside the cube only once turned: turning low would sweep the fingers into it.
    z = PUSH_Z if abs(yaw_error) < 0.15 else max(g[2], SAFE_Z)
    return move_towards(g, np.r_[pre_push, z], yaw_error, CLOSE)


def push_expert(state: np.ndarray) -> np.ndarray:
    """The push task's expert: the cube into the zone; (7,) in [-1, 1]."""
    return push_object(state, "cube", sl.get(state, "zone_pos"))


def place_object(
    state: np.ndarray,
    obj: str,
    goal: np.ndarray,
    release_z: float,
    done: bool,
    grasp_period: float = np.pi / 2,
    grasp_offset: float = 0.0,
) -> np.ndarray:
    """Grasp object slot ``obj`` from above (the gripper turned to its yaw plus
    ``grasp_offset``, modulo ``grasp_period``), carry it over the table point ``goal``
    (x, y), release it at gripper height ``release_z``; once ``done``, open and rise.
    (7,) in [-1, 1]."""
    g = sl.get(state, "gripper_pos").astype(np.float64)
    cube = sl.get(state, f"{obj}_pos").astype(np.float64)
    bowl = np.asarray(goal, np.float64)
    opening = float(sl.get(state, "gripper_opening")[0])
    gripper_yaw = _yaw(sl.get(state, "gripper_quat"))
    if done:
        return move_towards(g, np.r_[g[:2], SAFE_Z + 0.03], 0.0, OPEN)
    near_xy = np.linalg.norm(g[:2] - cube[:2])
    grasped = 0.015 < opening < 0.045 and near_xy < 0.02 and abs(g[2] - cube[2]) < 0.025
    if grasped:
        if cube[2] < 0.07 and np.linalg.norm(cube[:2] - bowl) > 0.02:
            return move_towards(g, np.r_[g[:2], SAFE_Z + 0.03], 0.0, CLOSE)
        if np.linalg.norm(cube[:2] - bowl) > 0.012:
            return move_towards(g, np.r_[bowl, SAFE_Z + 0.03], 0.0, CLOSE)
        grip = OPEN if g[2] < release_z + 0.01 else CLOSE
        return move_towards(g, np.r_[bowl, release_z], 0.0, grip)
    object_yaw = _yaw(sl.get(state, f"{obj}_quat")) + grasp_offset
    yaw_error = _yaw_error(object_yaw, gripper_yaw, grasp_period)
    grasp_z = max(GRASP_Z, cube[2])
    low = g[2] - grasp_z < 0.008
    if near_xy < 0.012 and low:
        if opening < 0.012:  # closed on nothing: open and retry
            return move_towards(g, np.r_[cube[:2], grasp_z + 0.03], yaw_error, OPEN)
        return move_towards(g, np.r_[cube[:2], grasp_z], yaw_error, CLOSE)
    if near_xy < 0.012 and abs(yaw_error) < 0.1 and opening > 0.06:
        return move_towards(g, np.r_[cube[:2], grasp_z], yaw_error, OPEN)
    if g[2] < SAFE_Z - 0.02 and near_xy > 0.03:
        return move_towards(g, np.r_[g[:2], SAFE_Z], yaw_error, OPEN)  # lift clear first
    return move_towards(g, np.r_[cube[:2], SAFE_Z], yaw_error, OPEN)


def pick_place_expert(state: np.ndarray) -> np.ndarray:
    """The pick-place task's expert: the cube into the bowl; (7,) in [-1, 1]."""
    done = bool(get_task("pick_place").success(state))
    return place_object(state, "cube", sl.get(state, "bowl_pos"), 0.07, done)


# Gripper height at which an object is let go over each place: above the bowl's rim, or
# just above the zone's table surface.
RELEASE_Z = {"bowl": 0.07, "zone": 0.045}
# (period, offset) of the yaw the grasp turns to: the bar-shaped block (long along its y)
# is held across its narrow side; the cube and the upright cylinder at any quarter turn.
GRASP_YAW = {"block": (np.pi, np.pi / 2)}


def instruction_expert(instruction: Instruction) -> Callable[[np.ndarray], np.ndarray]:
    """The stateless expert that carries out ``instruction`` (`sim/instructions.py`): a
    function of the state returning (7,) in [-1, 1]."""
    if instruction.task == "push":

        def act(state: np.ndarray) -> np.ndarray:
            return push_object(state, instruction.object, instruction.target_xy(state))

    elif instruction.task == "put":
        release = RELEASE_Z[instruction.goal]
        period, offset = GRASP_YAW.get(instruction.object, (np.pi / 2, 0.0))

        def act(state: np.ndarray) -> np.ndarray:
            done = bool(instruction.success(state))
            goal = instruction.target_xy(state)
            obj = instruction.object
            return place_object(state, obj, goal, release, done, period, offset)

    else:  # reach: over the spot beside the goal, high enough to clear every object

        def act(state: np.ndarray) -> np.ndarray:
            g = sl.get(state, "gripper_pos").astype(np.float64)
            target = np.r_[instruction.target_xy(state), SAFE_Z]
            return move_towards(g, target, 0.0, OPEN)

    return act


def follow_instruction(state: np.ndarray) -> np.ndarray:
    """The instructed tabletop's expert: carries out the instruction the state carries
    (`decode_instruction`); (7,) in [-1, 1]."""
    return instruction_expert(decode_instruction(state))(state)


EXPERTS = {"push": push_expert, "pick_place": pick_place_expert, "instruct": follow_instruction}


class ScriptedExpert:
    """An expert for one task, degraded by ``noise``.

    With probability ``noise`` each action is replaced by a uniform random action;
    otherwise the expert's action gets Gaussian noise of std ``0.5 * noise``. So noise 0
    is the expert and noise 1 is the random policy.
    """

    def __init__(self, task: str, noise: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        get_task(task)
        self.task = task
        self.noise = noise
        self._expert = EXPERTS[task]
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, state: np.ndarray) -> np.ndarray:
        """Action float32 (7,) in [-1, 1] for a state (STATE_DIM,)."""
        action = self._expert(np.asarray(state))
        if self.noise > 0:
            if self.rng.random() < self.noise:
                action = self.rng.uniform(-1.0, 1.0, size=7)
            else:
                action = action + self.rng.normal(0.0, 0.5 * self.noise, size=7)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
