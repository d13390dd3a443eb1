"""Which state-track features a world gets, read from its StateSpec's roles.

The features that made push work (the end-effector integrator, contact features, keypoint
maps, the gripper-frame head) need slots with a meaning: an end effector that the actions
move by deltas, objects it touches, a camera that films them. A world whose StateSpec
declares those roles gets the features; one that does not (a joint-torque arm such as
Reacher) trains the plain state MLP. Slots the dynamics config names explicitly win.
"""

from __future__ import annotations

import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.dynamics.config import DynamicsConfig

FEATURES = ("integrator", "contact", "keypoints", "frame_head")


def moving_objects(spec: StateSpec, states: np.ndarray) -> list[str]:
    """The spec's objects whose position varies in ``states`` (N, S): an object slot a
    scene leaves empty (all zeros) is no neighbour to learn contact with."""
    return [o for o in spec.objects if np.ptp(spec.get(states, f"{o}_pos"), axis=0).max() > 0]


def resolve_state_features(
    d: DynamicsConfig,
    spec: StateSpec,
    action_spec: ActionSpec,
    states: np.ndarray,
    features: list[str],
) -> list[str]:
    """Fill in what ``d`` learns from the data: the state and action dims, the state spec and
    the action range, and the slot fields (ee_slot, state_relative, keypoints, camera,
    frame_objects, frame_quat) from ``spec``'s roles for the ``features`` asked for, where
    ``d`` leaves them empty; return the features switched on."""
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown state-track features {unknown}; choose from {FEATURES}")
    d.state_spec = spec.to_dict()
    d.state_dim, d.action_dim = spec.dim, action_spec.dim  # shapes come from the data
    d.action_low, d.action_high = list(action_spec.low), list(action_spec.high)
    if not d.state_track:
        return []
    ee = spec.end_effector
    objects = moving_objects(spec, states)
    on = []
    if "integrator" in features and ee is not None and ee.action_delta and not d.ee_slot:
        d.ee_slot = ee.position
    if d.ee_slot:
        on.append("integrator")
    if "contact" in features and d.ee_slot and objects and not d.state_relative:
        d.state_relative = [f"{o}_pos" for o in objects]
    if d.state_relative:
        on.append("contact")
    camera = spec.projection()
    if "keypoints" in features and camera is not None and ee is not None and not d.keypoints:
        d.keypoints = [ee.position, *(f"{o}_pos" for o in objects)]
    if d.keypoints and not d.camera:
        if camera is None:
            raise ValueError("dynamics.keypoints are drawn through a camera the StateSpec lacks")
        d.camera = [float(x) for x in camera.ravel()]
    if d.keypoints:
        on.append("keypoints")
    rotating = [o for o in objects if spec.has(f"{o}_quat")]
    if "frame_head" in features and d.state_relative and ee and ee.orientation and rotating:
        if not d.frame_objects:
            d.frame_objects, d.frame_quat = rotating, ee.orientation
    if d.frame_objects:
        on.append("frame_head")
    d.__post_init__()  # the filled-in config must still be consistent
    return on
