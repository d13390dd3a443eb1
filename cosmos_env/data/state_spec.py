"""What the state vector of a world means: named slots with sizes, units and kinds, and the
roles that switch on the features a world model can use (an end effector moved by action
deltas, objects it touches, cameras that film them).

Every store writer puts a ``StateSpec`` in the store's attrs and every release carries it in
its ``config.json``, so the generic layers (tokenizer, dynamics, envs) look slots up by name
here and never import a world.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SLOT_KINDS = ("position", "quaternion", "joint", "velocity", "flag", "other")


@dataclass(frozen=True)
class StateSlot:
    """A contiguous run of ``size`` state dims: ``kind`` is one of ``SLOT_KINDS``, ``unit``
    free text ("m", "rad", "m/s", "" for flags)."""

    name: str
    size: int
    kind: str = "other"
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.name or "." in self.name:
            raise ValueError(f"state slot name {self.name!r} must be non-empty and have no '.'")
        if int(self.size) < 1:
            raise ValueError(f"state slot {self.name!r} has size {self.size}; it must be >= 1")
        object.__setattr__(self, "size", int(self.size))
        if self.kind not in SLOT_KINDS:
            raise ValueError(f"state slot {self.name!r}: kind {self.kind!r} not in {SLOT_KINDS}")
        if self.kind == "quaternion" and self.size != 4:
            raise ValueError(f"state slot {self.name!r}: a quaternion has 4 dims, not {self.size}")


@dataclass(frozen=True)
class EndEffector:
    """The end effector's roles: ``position``, a 3-D position slot (metres, world frame);
    ``orientation``, an optional (w, x, y, z) quaternion slot; ``action_delta``, the three
    action channels that move ``position`` by a delta in the action spec's physical units
    (Bridge's dx, dy, dz), or empty when the actions do not move it so."""

    position: str
    orientation: str = ""
    action_delta: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_delta", tuple(int(i) for i in self.action_delta))
        if self.action_delta and len(self.action_delta) != 3:
            raise ValueError(f"end_effector.action_delta names 3 channels, got {self.action_delta}")


@dataclass(frozen=True)
class StateSpec:
    """Named slots of a state vector (S,) in order, and optional roles.

    ``objects`` names objects whose position slot is ``<name>_pos`` (3-D) and, optionally,
    orientation slot ``<name>_quat``; ``cameras`` maps a camera name to its (3, 4) world ->
    image projection, row-major (12 floats; image coordinates in [-1, 1], u right, v down);
    ``instruction`` maps one-hot flag slots that carry an episode's instruction to what each
    of their entries means (e.g. ``instruction_object`` -> ("gripper", "cube", ...)).
    """

    slots: tuple[StateSlot, ...]
    end_effector: EndEffector | None = None
    objects: tuple[str, ...] = ()
    cameras: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    landmarks: tuple[str, ...] = ()
    instruction: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", tuple(self.slots))
        object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "landmarks", tuple(self.landmarks))
        cams = {str(k): tuple(float(x) for x in v) for k, v in dict(self.cameras).items()}
        object.__setattr__(self, "cameras", cams)
        if not self.slots:
            raise ValueError("a StateSpec needs at least one slot")
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"StateSpec slot names must be unique, got {names}")
        for cam, matrix in cams.items():
            if len(matrix) != 12 or not np.isfinite(matrix).all():
                raise ValueError(f"camera {cam!r} needs a finite (3, 4) projection (12 numbers)")
        if self.end_effector is not None:
            self.position_slot(self.end_effector.position, "end_effector.position")
            if self.end_effector.orientation:
                self._slot_of_kind(self.end_effector.orientation, "quaternion")
        for obj in self.objects:
            self.position_slot(f"{obj}_pos", f"object {obj!r}")
        for mark in self.landmarks:
            self.position_slot(f"{mark}_pos", f"landmark {mark!r}")
        role = {str(k): tuple(str(v) for v in values) for k, values in self.instruction.items()}
        object.__setattr__(self, "instruction", role)
        for name, values in role.items():
            self._slot_of_kind(name, "flag", len(values), f"instruction slot {name!r}")

    # -- lookups ------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of state dims S."""
        return sum(s.size for s in self.slots)

    def _offsets(self) -> dict[str, slice]:
        out, start = {}, 0
        for s in self.slots:
            out[s.name] = slice(start, start + s.size)
            start += s.size
        return out

    def has(self, name: str) -> bool:
        return name in self._offsets()

    def slot(self, name: str) -> slice:
        """Index into the last axis of a state array for slot ``name``."""
        offsets = self._offsets()
        if name not in offsets:
            raise KeyError(f"unknown state slot {name!r}; this state has {sorted(offsets)}")
        return offsets[name]

    def _slot_of_kind(self, name: str, kind: str, size: int | None = None, what: str = "") -> slice:
        index = self.slot(name)
        found = next(s for s in self.slots if s.name == name)
        if found.kind != kind or (size is not None and found.size != size):
            need = f"a {size}-d {kind}" if size else f"a {kind}"
            raise ValueError(
                f"{what or name}: slot {name!r} is {found.size}-d {found.kind}, expected {need}"
            )
        return index

    def position_slot(self, name: str, what: str = "") -> slice:
        """The dims of ``name``, which must be a 3-D position slot (``what`` names the
        caller's key in the error)."""
        return self._slot_of_kind(name, "position", 3, what)

    def named_positions(self) -> dict[str, slice]:
        """Short name (``gripper``, ``cube``) -> dims of the end effector's, the objects' and
        the landmarks' 3-D position slots, end effector first: what errors in cm are
        reported for."""
        names = [self.end_effector.position] if self.end_effector else []
        names += [f"{o}_pos" for o in (*self.objects, *self.landmarks)]
        return {n.removesuffix("_pos"): self.slot(n) for n in names}

    def dim_names(self) -> tuple[str, ...]:
        """One name per state dim: ``slot`` for 1-d slots, ``slot.x``/``slot.w``... or
        ``slot.<i>`` otherwise."""
        suffix = {3: ("x", "y", "z"), 2: ("x", "y")}
        names: list[str] = []
        for s in self.slots:
            if s.size == 1:
                names.append(s.name)
                continue
            parts = ("w", "x", "y", "z") if s.kind == "quaternion" else suffix.get(s.size)
            names += [f"{s.name}.{p}" for p in (parts or range(s.size))]
        return tuple(names)

    def get(self, state: np.ndarray, name: str) -> np.ndarray:
        """Slot ``name`` of states (..., S)."""
        return np.asarray(state)[..., self.slot(name)]

    def projection(self, camera: str | None = None) -> np.ndarray | None:
        """The (3, 4) projection of ``camera`` (default: the first), or None without one."""
        if not self.cameras:
            return None
        name = camera or next(iter(self.cameras))
        if name not in self.cameras:
            raise KeyError(f"unknown camera {name!r}; this state has {sorted(self.cameras)}")
        return np.asarray(self.cameras[name], np.float64).reshape(3, 4)

    def check_state(self, state: np.ndarray, what: str = "state") -> None:
        """Raise ValueError unless ``state`` has S dims on its last axis."""
        shape = np.shape(state)
        if not shape or shape[-1] != self.dim:
            raise ValueError(f"{what} has shape {shape}; this state spec has {self.dim} dims")

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        ee = self.end_effector
        return (
            {
                "slots": [[s.name, s.size, s.kind, s.unit] for s in self.slots],
                "end_effector": None
                if ee is None
                else {
                    "position": ee.position,
                    "orientation": ee.orientation,
                    "action_delta": list(ee.action_delta),
                },
                "objects": list(self.objects),
                "cameras": {k: list(v) for k, v in self.cameras.items()},
            }
            | ({"landmarks": list(self.landmarks)} if self.landmarks else {})
            | (
                {"instruction": {k: list(v) for k, v in self.instruction.items()}}
                if self.instruction
                else {}
            )
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StateSpec:
        """Inverse of `to_dict`; unknown keys raise."""
        known = {"slots", "end_effector", "objects", "cameras", "landmarks", "instruction"}
        unknown = set(d) - known
        if unknown or "slots" not in d:
            raise ValueError(f"StateSpec dict: unknown keys {sorted(unknown)} or no 'slots'")
        bad = [e for e in d["slots"] if not isinstance(e, (list, tuple)) or not 1 <= len(e) <= 4]
        if bad:
            raise ValueError(f"StateSpec dict: a slot is [name, size, kind, unit], got {bad[0]!r}")
        slots = tuple(StateSlot(*entry) for entry in d["slots"])
        ee = d.get("end_effector")
        ee_unknown = set(ee or {}) - {"position", "orientation", "action_delta"}
        if ee_unknown:
            raise ValueError(f"StateSpec dict: unknown end_effector keys {sorted(ee_unknown)}")
        end_effector = None if ee is None else EndEffector(**ee)
        objects, landmarks = tuple(d.get("objects", ())), tuple(d.get("landmarks", ()))
        instruction = d.get("instruction", {})
        return cls(slots, end_effector, objects, d.get("cameras", {}), landmarks, instruction)

    @classmethod
    def flat(cls, names: Sequence[str], kind: str = "other") -> StateSpec:
        """One 1-d slot per name (dots, which separate a slot from its parts, become
        underscores), no roles: the spec of a state nobody described."""
        return cls(tuple(StateSlot(str(n).replace(".", "_"), 1, kind) for n in names))
