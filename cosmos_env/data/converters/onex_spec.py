"""1X's robot layout as cosmos-env specs: the 25-d state, the v1.1 action files, and the
joint-space delta actions of v2.0/raw (which ship no actions); ``datasets/onex/README.md``
is the format reference. ``onex.py`` converts with them.
"""

from __future__ import annotations

import math

import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSlot, StateSpec

JOINTS = (
    "hip_yaw", "hip_roll", "hip_pitch", "knee_pitch", "ankle_roll", "ankle_pitch",
    "left_shoulder_pitch", "left_shoulder_roll", "left_shoulder_yaw", "left_elbow_pitch",
    "left_elbow_yaw", "left_wrist_pitch", "left_wrist_roll", "right_shoulder_pitch",
    "right_shoulder_roll", "right_shoulder_yaw", "right_elbow_pitch", "right_elbow_yaw",
    "right_wrist_pitch", "right_wrist_roll", "neck_pitch",
)  # fmt: skip
STATE_NAMES = (
    *JOINTS,
    "left_hand_closure",
    "right_hand_closure",
    "linear_velocity",
    "angular_velocity",
)  # 1X's v2.0 "Index-to-State Mapping", snake_case
# The 25-d state as slots: joint angles, hand closures (0 open .. 1 closed) and the base's
# commanded velocities. No roles: the state holds no end-effector or object position.
STATE_SPEC = StateSpec(
    (
        *(StateSlot(j, 1, "joint", "rad") for j in JOINTS),
        StateSlot("left_hand_closure", 1, "joint", "1"),
        StateSlot("right_hand_closure", 1, "joint", "1"),
        StateSlot("linear_velocity", 1, "velocity", "m/s"),
        StateSlot("angular_velocity", 1, "velocity", "rad/s"),
    )
)
# v1.1 action files in the dataset card's order: (name, accepted column counts).
V11_ACTIONS = (
    ("joint_pos", (21,)),
    ("driving_command", (2,)),
    ("neck_desired", (1, 3)),
    ("l_hand_closure", (1,)),
    ("r_hand_closure", (1,)),
)


# --------------------------------------------------------------------- segments and actions
def find_segments(ids: np.ndarray) -> list[tuple[int, int, int]]:
    """Contiguous runs of equal id in `ids` (n,): [(segment id, start, end)], end exclusive."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return []
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(ids)]
    return [(int(ids[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def delta_actions(states: np.ndarray) -> np.ndarray:
    """Joint-space delta actions of one episode: (T, S) float32 -> (T, S) float32 with
    ``a[t] = s[t + 1] - s[t]`` and a zero padding action on the last row."""
    out = np.zeros_like(states, dtype=np.float32)
    out[:-1] = states[1:] - states[:-1]
    return out


def delta_action_spec() -> ActionSpec:
    """Bounds of the v2.0/raw delta actions, per 1/30 s step (see the module docstring)."""
    bounds = {"left_hand_closure": ("1", 1.0), "right_hand_closure": ("1", 1.0)}
    bounds |= {"linear_velocity": ("m/s", 0.5), "angular_velocity": ("rad/s", 0.5)}
    units, high = zip(*(bounds.get(n, ("rad", 0.25)) for n in STATE_NAMES), strict=True)
    names = tuple(f"delta_{n}" for n in STATE_NAMES)
    return ActionSpec(names, units, tuple(-h for h in high), high)


def v11_action_spec(neck_columns: int = 1) -> ActionSpec:
    """Bounds of the v1.1 absolute actions in the card's order (see the module docstring)."""
    neck = [f"neck_desired_{i}" for i in range(neck_columns)] if neck_columns > 1 else []
    neck = neck or ["neck_desired"]
    rows = [(j, "rad", -math.pi, math.pi) for j in JOINTS]
    rows += [("linear_velocity", "m/s", -2.0, 2.0), ("angular_velocity", "rad/s", -2.0, 2.0)]
    rows += [(n, "rad", -math.pi, math.pi) for n in neck]
    rows += [("left_hand_closure", "1", 0.0, 1.0), ("right_hand_closure", "1", 0.0, 1.0)]
    names, units, low, high = zip(*rows, strict=True)
    return ActionSpec(names, units, low, high)


def normalise_actions(physical: np.ndarray, spec: ActionSpec) -> tuple[np.ndarray, list[str]]:
    """Physical actions (T, A) -> float32 (T, A) in [-1, 1], clipping out-of-range values;
    returns the warnings that name the clipped dimensions."""
    low, high = np.asarray(spec.low, np.float32), np.asarray(spec.high, np.float32)
    outside = (physical < low) | (physical > high)
    warnings = []
    if outside.any():
        dims = [
            f"{spec.names[d]} ({int(outside[:, d].sum())}x, {physical[outside[:, d], d].min():.3g}"
            f"..{physical[outside[:, d], d].max():.3g} {spec.units[d]}; "
            f"range [{spec.low[d]:.3g}, {spec.high[d]:.3g}])"
            for d in np.flatnonzero(outside.any(axis=0))
        ]
        warnings.append("action values outside the spec's range were clipped: " + ", ".join(dims))
    action = spec.unscale(np.clip(physical, low, high).astype(np.float32))
    return np.clip(action, -1.0, 1.0).astype(np.float32), warnings
