"""The tabletop state vector: one fixed layout shared by the simulator, the stored
episodes, the task functions and (later) the world model's state probe.

Every slot is always present; an object that a scene does not contain is reported as
zeros with its ``present`` flag at 0, so that stores made with one, two or three objects
share a schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OBJECT_NAMES: tuple[str, ...] = ("cube", "cylinder", "block")


@dataclass(frozen=True)
class StateSlot:
    name: str
    start: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


def _build_slots() -> tuple[StateSlot, ...]:
    sizes: list[tuple[str, int]] = [
        ("gripper_pos", 3),  # metres, world frame
        ("gripper_quat", 4),  # (w, x, y, z)
        ("gripper_opening", 1),  # metres between the fingers, 0 (closed) .. 0.08
    ]
    for obj in OBJECT_NAMES:
        sizes += [(f"{obj}_pos", 3), (f"{obj}_quat", 4), (f"{obj}_present", 1)]
    sizes += [("zone_pos", 2), ("bowl_pos", 2)]
    slots, start = [], 0
    for name, size in sizes:
        slots.append(StateSlot(name, start, size))
        start += size
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


def get(state: np.ndarray, name: str) -> np.ndarray:
    """The named slot of a state array of shape (..., STATE_DIM)."""
    return np.asarray(state)[..., slot(name)]
