"""Language instructions for the tabletop: templates over tasks x objects x goals, the
success test and shaped reward of each (vectorised functions of the state, as
``tasks.py``'s), and the combinations held out of training to test composition.

An `Instruction` is a (task, object, goal) triple:

- ``push``: push an object slot (cube, cylinder, block) into the green zone;
- ``put``: pick an object up and put it in the yellow bowl or on the green zone;
- ``reach_left`` / ``reach_right``: move the gripper to the left / right (as the front
  camera sees it) of the zone, the bowl or an object.

Its text names the object by what the camera shows ("the blue cylinder", `object_phrase`
of the scene's look), so the same triple reads "put the blue cylinder in the yellow bowl"
in the fixed scene.

The instructed tabletop carries the episode's triple in its state: three one-hot slots
after the tabletop's own (``instruction_task``, ``instruction_object``,
``instruction_goal``), which the StateSpec's ``instruction`` role names entry by entry. So
the task's success and reward are functions of the state alone, vectorised over episodes
with different instructions, and a world model's state track carries the instruction as
it carries the objects.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from cosmos_env.data.state_spec import StateSlot as SpecSlot
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.tabletop_geometry import (
    BOWL_RADIUS,
    BOWL_RIM_Z,
    CUBE_HALF,
    TABLE_TOP_Z,
    ZONE_RADIUS,
)

OBJECTS = sl.OBJECT_NAMES  # cube, cylinder, block
PLACES = ("zone", "bowl")
PLACE_PHRASES = {"zone": "green zone", "bowl": "yellow bowl"}
# The front camera looks along +y with +x to its right (its projection in the StateSpec),
# so "left" on screen is -x on the table.
SCREEN_LEFT = np.array([-1.0, 0.0])
SIDE_BAND = (0.04, 0.10)  # metres beside the goal's centre that count as "left of" it
SIDE_ALIGN = 0.04  # metres off that line (along y) still counted

GOALS: dict[str, tuple[str, ...]] = {
    "push": ("zone",),
    "put": ("bowl", "zone"),
    "reach_left": (*PLACES, *OBJECTS),
    "reach_right": (*PLACES, *OBJECTS),
}
TEMPLATES = {
    "push": "push the {object} into the {goal}",
    "put": "put the {object} {preposition} the {goal}",
    "reach_left": "move the gripper to the left of the {goal}",
    "reach_right": "move the gripper to the right of the {goal}",
}
# Never in training: each object and each goal is seen, but not together in these.
INSTRUCT_STEPS = 60  # the instructed tabletop's time limit: the longest task's (put)
# The one-hot slots of the instructed state, in order, and what each entry means.
INSTRUCTION_ROLE: dict[str, tuple[str, ...]] = {
    "instruction_task": tuple(GOALS),
    "instruction_object": ("gripper", *OBJECTS),
    "instruction_goal": (*PLACES, *OBJECTS),
}
INSTRUCTED_DIM = sl.STATE_DIM + sum(len(v) for v in INSTRUCTION_ROLE.values())
HELD_OUT: tuple[tuple[str, str, str], ...] = (
    ("put", "cylinder", "bowl"),
    ("push", "block", "zone"),
    ("reach_right", "gripper", "cube"),
)


def _goal_xy(state: np.ndarray, goal: str) -> np.ndarray:
    """The goal's table position (..., 2): a place's centre or an object's."""
    return np.asarray(sl.get(state, f"{goal}_pos"))[..., :2]


def _xy_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(a)[..., :2] - np.asarray(b)[..., :2], axis=-1)


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``task`` (a key of ``TEMPLATES``), ``object`` (an object slot, or
    "gripper" for reach tasks) and ``goal`` (a place or an object slot). Success and
    reward are functions of states (..., STATE_DIM) returning (...)."""

    task: str
    object: str
    goal: str

    def __post_init__(self) -> None:
        if self.task not in GOALS:
            raise ValueError(f"unknown instruction task {self.task!r}; choose from {list(GOALS)}")
        objects = ("gripper",) if self.task.startswith("reach") else OBJECTS
        if self.object not in objects:
            raise ValueError(f"{self.task} takes an object in {list(objects)}, not {self.object!r}")
        if self.goal not in GOALS[self.task]:
            raise ValueError(
                f"{self.task} takes a goal in {list(GOALS[self.task])}, not {self.goal!r}"
            )

    @property
    def key(self) -> str:
        """ "task/object/goal", e.g. "put/cylinder/bowl"."""
        return f"{self.task}/{self.object}/{self.goal}"

    def text(self, phrases: Mapping[str, str]) -> str:
        """The instruction in words; ``phrases`` maps object slots to what the camera shows
        ("cylinder" -> "blue cylinder", `object_phrases`)."""
        name = {**PLACE_PHRASES, **phrases}
        return TEMPLATES[self.task].format(
            object=name.get(self.object, self.object),
            goal=name[self.goal],
            preposition="in" if self.goal == "bowl" else "on",
        )

    def target_xy(self, state: np.ndarray) -> np.ndarray:
        """Where the instructed thing should end (..., 2): the goal's centre, or for reach
        tasks the middle of the band beside it."""
        centre = _goal_xy(state, self.goal)
        if not self.task.startswith("reach"):
            return centre
        sign = 1.0 if self.task == "reach_left" else -1.0
        return centre + sign * np.mean(SIDE_BAND) * SCREEN_LEFT

    def success(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state)
        if self.task.startswith("reach"):
            offset = sl.get(state, "gripper_pos")[..., :2] - _goal_xy(state, self.goal)
            sign = 1.0 if self.task == "reach_left" else -1.0
            along = sign * (offset @ SCREEN_LEFT)
            across = np.abs(offset @ np.array([-SCREEN_LEFT[1], SCREEN_LEFT[0]]))
            return (along > SIDE_BAND[0]) & (along < SIDE_BAND[1]) & (across < SIDE_ALIGN)
        pos = sl.get(state, f"{self.object}_pos")
        if self.goal == "bowl":
            inside = _xy_dist(pos, _goal_xy(state, "bowl")) < BOWL_RADIUS - CUBE_HALF / 2
            return inside & (pos[..., 2] < TABLE_TOP_Z + BOWL_RIM_Z + CUBE_HALF)
        inside = _xy_dist(pos, _goal_xy(state, self.goal)) < ZONE_RADIUS
        return inside & (pos[..., 2] < TABLE_TOP_Z + 3 * CUBE_HALF)

    def dense_reward(self, state: np.ndarray) -> np.ndarray:
        """Negative distances (metres) of the gripper to the object and of the object (for
        reach tasks: the gripper) to the target, plus 1 on success."""
        state = np.asarray(state)
        gripper = sl.get(state, "gripper_pos")
        bonus = self.success(state).astype(np.float64)
        if self.task.startswith("reach"):
            return -_xy_dist(gripper, self.target_xy(state)) + bonus
        pos = sl.get(state, f"{self.object}_pos")
        reach = np.linalg.norm(gripper - pos, axis=-1)
        return -0.5 * reach - _xy_dist(pos, self.target_xy(state)) + bonus


@functools.cache
def all_instructions() -> tuple[Instruction, ...]:
    """Every valid (task, object, goal) triple, in a fixed order (built once)."""
    out = []
    for task, goals in GOALS.items():
        objects = ("gripper",) if task.startswith("reach") else OBJECTS
        out += [Instruction(task, obj, goal) for obj, goal in itertools.product(objects, goals)]
    return tuple(out)


def split_instructions(
    held_out: Iterable[tuple[str, str, str]] = HELD_OUT,
) -> tuple[tuple[Instruction, ...], tuple[Instruction, ...]]:
    """(seen, held-out) instructions; every held-out triple must be a valid one, and every
    object and goal of a held-out triple must still be seen in training."""
    held = tuple(Instruction(*triple) for triple in held_out)
    seen = tuple(i for i in all_instructions() if i not in held)
    for instruction in held:
        if not any(i.object == instruction.object for i in seen):
            raise ValueError(f"held out {instruction.key}: its object is then never seen")
        if not any(i.goal == instruction.goal for i in seen):
            raise ValueError(f"held out {instruction.key}: its goal is then never seen")
    return seen, held


def parse_instruction(text: str, phrases: Mapping[str, str]) -> Instruction:
    """The instruction whose text (with these object ``phrases``) is ``text``, ignoring
    case and surrounding space; a ValueError listing a few valid ones otherwise."""
    wanted = " ".join(text.lower().split())
    for instruction in all_instructions():
        if instruction.text(phrases) == wanted:
            return instruction
    examples = "; ".join(i.text(phrases) for i in all_instructions()[:3])
    raise ValueError(
        f"{text!r} is no instruction this tabletop knows; instructions read like: {examples}"
    )


def encode_instruction(instruction: Instruction) -> np.ndarray:
    """The instruction's one-hot slots, float32 (INSTRUCTED_DIM - STATE_DIM,)."""
    parts = []
    names = (instruction.task, instruction.object, instruction.goal)
    for values, name in zip(INSTRUCTION_ROLE.values(), names, strict=True):
        part = np.zeros(len(values), np.float32)
        part[values.index(name)] = 1.0
        parts.append(part)
    return np.concatenate(parts)


def decode_instruction(state: np.ndarray) -> Instruction:
    """The instruction one instructed state (INSTRUCTED_DIM,) carries (its largest entry in
    each one-hot slot)."""
    state = np.asarray(state)
    if state.shape != (INSTRUCTED_DIM,):
        raise ValueError(f"an instructed state is ({INSTRUCTED_DIM},), got {state.shape}")
    start, names = sl.STATE_DIM, []
    for values in INSTRUCTION_ROLE.values():
        names.append(values[int(np.argmax(state[start : start + len(values)]))])
        start += len(values)
    return Instruction(*names)


@functools.cache
def _instruction_codes() -> np.ndarray:
    """The one-hot codes (I, E) of ``all_instructions()``, built once: the task functions
    run on every env step."""
    codes = np.stack([encode_instruction(i) for i in all_instructions()])
    codes.flags.writeable = False  # shared by every call
    return codes


def _instruction_weights(states: np.ndarray) -> np.ndarray:
    """(..., I): 1 where a state carries instruction i of ``all_instructions()``."""
    codes = _instruction_codes()  # (I, E)
    found = np.asarray(states)[..., sl.STATE_DIM :]
    if found.shape[-1] != codes.shape[1]:
        raise ValueError(
            f"instructed states have {INSTRUCTED_DIM} dims, got {np.shape(states)[-1]}"
        )
    return np.isclose(found @ codes.T, 3.0, atol=0.5).astype(np.float64)  # 3 one-hots agree


def instructed_success(states: np.ndarray) -> np.ndarray:
    """The carried instruction's success, (...) bool, for instructed states (..., D)."""
    weights = _instruction_weights(states)
    tests = np.stack([i.success(states) for i in all_instructions()], -1)
    return (weights * tests).sum(-1) > 0.5


def instructed_reward(states: np.ndarray) -> np.ndarray:
    """The carried instruction's shaped reward, (...) float64."""
    weights = _instruction_weights(states)
    rewards = np.stack([i.dense_reward(states) for i in all_instructions()], -1)
    return (weights * rewards).sum(-1)


def instructed_state_spec(projection: np.ndarray | None = None, camera: str = "front") -> StateSpec:
    """The tabletop's StateSpec (`tabletop_state_spec`) with the instruction's one-hot slots
    after it, named by the spec's ``instruction`` role."""
    base = sl.tabletop_state_spec(projection, camera)
    extra = tuple(SpecSlot(name, len(values), "flag") for name, values in INSTRUCTION_ROLE.items())
    return replace(base, slots=base.slots + extra, instruction=dict(INSTRUCTION_ROLE))
