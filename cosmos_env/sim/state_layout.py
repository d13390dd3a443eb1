"""The tabletop state vector: one fixed layout shared by the simulator, the stored
episodes, the task functions and (later) the world model's state probe.

Every slot is always present; an object that a scene does not contain is reported as
zeros with its ``present`` flag at 0, so that stores made with one, two or three objects
share a schema. `tabletop_state_spec` describes the layout as the generic layers read it
(a `StateSpec`: kinds, units, the gripper as end effector, the objects, the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosmos_env.data.state_spec import EndEffector, StateSpec
from cosmos_env.data.state_spec import StateSlot as SpecSlot

OBJECT_NAMES: tuple[str, ...] = ("cube", "cylinder", "block")


@dataclass(frozen=True)
class StateSlot:
    name: str
    start: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


def _slot_specs() -> tuple[SpecSlot, ...]:
    """(name, size, kind, unit) of every slot, in order."""
    slots = [
        SpecSlot("gripper_pos", 3, "position", "m"),  # world frame
        SpecSlot("gripper_quat", 4, "quaternion"),  # (w, x, y, z)
        SpecSlot("gripper_opening", 1, "joint", "m"),  # between the fingers, 0 (closed) .. 0.08
    ]
    for obj in OBJECT_NAMES:
        slots += [
            SpecSlot(f"{obj}_pos", 3, "position", "m"),
            SpecSlot(f"{obj}_quat", 4, "quaternion"),
            SpecSlot(f"{obj}_present", 1, "flag"),
        ]
    # (x, y) on the table; 2-d, so not a position role (those are 3-d)
    slots += [SpecSlot("zone_pos", 2, "position", "m"), SpecSlot("bowl_pos", 2, "position", "m")]
    return tuple(slots)


_SPEC_SLOTS = _slot_specs()


def _build_slots() -> tuple[StateSlot, ...]:
    slots, start = [], 0
    for spec in _SPEC_SLOTS:
        slots.append(StateSlot(spec.name, start, spec.size))
        start += spec.size
    return tuple(slots)


STATE_SLOTS: tuple[StateSlot, ...] = _build_slots()
STATE_DIM: int = STATE_SLOTS[-1].start + STATE_SLOTS[-1].size
_SLOT_BY_NAME = {slot.name: slot for slot in STATE_SLOTS}


def slot(name: str) -> slice:
    """Index into the last axis of a state array for the named slot."""
    if name not in _SLOT_BY_NAME:
        raise KeyError(f"unknown state slot {name!r}; known: {sorted(_SLOT_BY_NAME)}")
    return _SLOT_BY_NAME[name].slice


def state_names() -> tuple[str, ...]:
    """One name per state dimension, e.g. ``gripper_pos.x``, for the store's schema."""
    suffix = {3: ("x", "y", "z"), 4: ("w", "x", "y", "z"), 2: ("x", "y"), 1: ("",)}
    names: list[str] = []
    for s in STATE_SLOTS:
        names += [f"{s.name}.{c}" if c else s.name for c in suffix[s.size]]
    return tuple(names)


def tabletop_state_spec(projection: np.ndarray | None = None, camera: str = "front") -> StateSpec:
    """The tabletop state as a `StateSpec`: the gripper is the end effector, moved by the
    first three action channels (dx, dy, dz, in the world frame of ``gripper_pos``); the
    objects are cube, cylinder and block (absent ones read as zeros, ``<obj>_present`` 0);
    `projection` (3, 4), when given, is `camera`'s world -> image projection."""
    cameras = {} if projection is None else {camera: np.asarray(projection, float).ravel()}
    return StateSpec(
        _SPEC_SLOTS,
        end_effector=EndEffector("gripper_pos", "gripper_quat", (0, 1, 2)),
        objects=OBJECT_NAMES,
        cameras=cameras,
    )


def get(state: np.ndarray, name: str) -> np.ndarray:
    """The named slot of a state array of shape (..., STATE_DIM)."""
    return np.asarray(state)[..., slot(name)]
