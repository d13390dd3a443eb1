"""Which state-track features a world gets, read from its StateSpec's roles.

The features that made push work (the end-effector integrator, contact features, keypoint
maps, the gripper-frame head) need slots with a meaning: an end effector that the actions
move by deltas, objects it touches, a camera that films them. A world whose StateSpec
declares those roles gets the features; a joint-torque arm such as Reacher, whose state
has only its links' positions (the ``landmarks`` role) and a camera, gets keypoint maps
alone. Slots the dynamics config names explicitly win.
"""

from __future__ import annotations

import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.dynamics.track_config import (
    ContactConfig,
    FrameHeadConfig,
    IntegratorConfig,
    KeypointsConfig,
)

FEATURES = ("integrator", "contact", "keypoints", "frame_head")


def config_state_spec(cfg) -> StateSpec:
    """The StateSpec a dynamics config carries; a flat one (s0, s1, ...) when it has none,
    which serves every feature that names no slot."""
    if cfg.state_spec:
        spec = StateSpec.from_dict(cfg.state_spec)
        if spec.dim != cfg.state_dim:
            raise ValueError(f"state_spec has {spec.dim} dims but state_dim is {cfg.state_dim}")
        return spec
    track = getattr(cfg, "state_track", None)
    parts = ("integrator", "contact", "keypoints", "frame_head")
    named = [f"state_track.{n}" for n in parts if track and getattr(track, n)]
    if named:
        raise ValueError(
            f"the dynamics config names state slots ({', '.join(named)}) but carries no "
            "state_spec to find them in; train-dynamics fills it in from the store"
        )
    return StateSpec.flat([f"s{i}" for i in range(cfg.state_dim)])


def moving_objects(spec: StateSpec, states: np.ndarray) -> list[str]:
    """The spec's objects whose position varies in ``states`` (N, S): an object slot a
    scene leaves empty (all zeros) is no neighbour to learn contact with."""
    return [o for o in spec.objects if np.ptp(spec.get(states, f"{o}_pos"), axis=0).max() > 0]


def resolve_state_features(
    d,
    spec: StateSpec,
    action_spec: ActionSpec,
    states: np.ndarray,
    features: list[str],
) -> list[str]:
    """Fill in what the model config ``d`` (either backend's: it has ``state_track``,
    ``state_spec``, ``state_dim``, ``action_dim``, ``action_low``/``action_high``) learns
    from the data: the state and action dims, the state spec and
    the action range, and the state track's parts (integrator, contact, keypoints with the
    camera, frame head) from ``spec``'s roles for the ``features`` asked for, where ``d``
    does not set them; return the features switched on."""
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown state-track features {unknown}; choose from {FEATURES}")
    d.state_spec = spec.to_dict()
    # Shapes come from the data (an action-free config drops the actions' in __post_init__).
    d.state_dim, d.action_dim = spec.dim, action_spec.dim
    d.action_low, d.action_high = list(action_spec.low), list(action_spec.high)
    track = d.state_track
    if track is None:
        return []
    ee, objects = spec.end_effector, moving_objects(spec, states)
    moved_by_actions = ee is not None and ee.action_delta and d.actions
    if "integrator" in features and moved_by_actions and not track.integrator:
        track.integrator = IntegratorConfig(ee.position)
    # Contact is measured from the end effector: the integrated one, or without actions
    # the state's own.
    free = ee is not None and not d.actions
    if "contact" in features and (track.integrator or free) and objects and not track.contact:
        anchor = "" if track.integrator else ee.position
        track.contact = ContactConfig([f"{o}_pos" for o in objects], anchor)
    camera = spec.projection()
    points = [ee.position] if ee is not None else []
    points += [f"{name}_pos" for name in (*objects, *spec.landmarks)]
    if "keypoints" in features and camera is not None and points and not track.keypoints:
        track.keypoints = KeypointsConfig(points)
    if track.keypoints and not track.keypoints.camera:
        if camera is None:
            raise ValueError("state_track.keypoints are drawn through a camera the StateSpec lacks")
        track.keypoints.camera = [float(x) for x in camera.ravel()]
    rotating = [o for o in objects if spec.has(f"{o}_quat")]
    wants_head = "frame_head" in features and track.integrator and track.contact
    wants_head = wants_head and ee and ee.orientation
    if wants_head and rotating and not track.frame_head:
        track.frame_head = FrameHeadConfig(rotating, ee.orientation)
    d.__post_init__()  # the filled-in config must still be consistent
    parts = {"integrator": track.integrator, "contact": track.contact}
    parts |= {"keypoints": track.keypoints, "frame_head": track.frame_head}
    return [name for name in FEATURES if parts[name]]
