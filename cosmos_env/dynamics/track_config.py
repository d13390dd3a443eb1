"""The state track's configuration, shared by both backends: a learned state dynamics that
carries the task state beside the frames (with its optional end-effector integrator,
contact features, keypoint maps and gripper-frame head) and the optional outcome heads.
Each backend's model config holds a ``state_track`` and an ``outcome_heads`` of these."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class IntegratorConfig:
    """End-effector integrator: this 3-D position slot moves exactly by the end effector's
    delta action channels (the StateSpec's ``end_effector.action_delta``), clipped to the
    range the training states span; the state MLP learns only what is left (controller
    lag, contacts). An MLP alone drifts by centimetres over 16 steps."""

    slot: str


@dataclass
class ContactConfig:
    """Contact features: the state MLP also reads these 3-D slots' offsets from the end
    effector in every context frame and their last one-step change. On absolute positions
    alone it learns "the cube moves when the arm does", which a planner exploits."""

    slots: list[str]
    # The end effector's 3-D slot the offsets are taken from; "" = the integrator's. A model
    # without actions has no integrator and names it here.
    anchor: str = ""


@dataclass
class KeypointsConfig:
    """Keypoint maps: these 3-D position slots, projected by ``camera`` (a (3, 4) matrix,
    row-major, from the StateSpec; training fills it in), drawn as Gaussian blobs of std
    ``sigma`` tokens on the token grid for every context frame and the next."""

    slots: list[str]
    camera: list[float] = field(default_factory=list)
    sigma: float = 0.75


@dataclass
class FrameHeadConfig:
    """Gripper-frame head: the planar motion of these objects (slots ``<name>_pos`` and
    ``<name>_quat``) predicted in the frame of the end effector's yaw (orientation slot
    ``quat``) from shift- and turn-invariant features, then rotated back."""

    objects: list[str]
    quat: str
    width: int = 256


@dataclass
class StateTrackConfig:
    """A learned state dynamics carries the task state from step to step, and the denoiser
    is conditioned on the context's and the next frame's states, so the arm and the objects
    are drawn where the state says they are. The parts below switch on from the StateSpec's
    roles (``dynamics/state_features.py``) or by naming their slots."""

    width: int = 512  # hidden width of the state-dynamics MLP
    noise: float = 0.1  # max std of augmentation noise on conditioning states (std units)
    integrator: IntegratorConfig | None = None
    contact: ContactConfig | None = None
    keypoints: KeypointsConfig | None = None
    frame_head: FrameHeadConfig | None = None


@dataclass
class OutcomeHeadsConfig:
    """Learned reward / termination / success heads on the state before and after a step
    and its action: what an env scores with when its world has no function for them."""

    width: int = 256


def check_track(track: StateTrackConfig) -> None:
    """The track's parts must fit together; a ValueError naming the missing part."""
    if track.contact and not (track.integrator or track.contact.anchor):
        raise ValueError(
            "contact offsets are taken from the end effector: set the integrator, or the "
            "contact's anchor slot"
        )
    if track.frame_head and not track.integrator:
        raise ValueError("the frame head's end effector moves by the actions: set the integrator")
    if track.frame_head and not track.contact:
        raise ValueError(
            "frame_head objects are predicted from the contact features' offsets: set contact"
        )
    if track.frame_head and not track.frame_head.quat:
        raise ValueError("frame_head needs the end effector's orientation slot: set its quat")
    camera = track.keypoints.camera if track.keypoints else []
    if camera and len(camera) != 12:
        raise ValueError(f"camera must be a (3, 4) projection (12 numbers), got {len(camera)}")


TRACK_NESTED: dict[type, dict[str, type]] = {
    StateTrackConfig: {
        "integrator": IntegratorConfig,
        "contact": ContactConfig,
        "keypoints": KeypointsConfig,
        "frame_head": FrameHeadConfig,
    },
}


def check_state_parts(cfg) -> None:
    """A model config's state parts (either backend's): its ``state_track`` must fit
    together (`check_track`) and ``action_low``/``action_high``, when set, give one value
    per action channel."""
    if cfg.state_track is not None:
        check_track(cfg.state_track)
    for name in ("action_low", "action_high"):
        bounds = getattr(cfg, name)
        if bounds and len(bounds) != cfg.action_dim:
            raise ValueError(
                f"{name} needs one value per action channel ({cfg.action_dim}), got {len(bounds)}"
            )


def keypoint_channels(track: StateTrackConfig | None, context: int) -> int:
    """Keypoint-map channels (K+1 frames x keypoints) a network reads; 0 until a camera is
    set."""
    keypoints = track.keypoints if track else None
    if not (keypoints and keypoints.slots and keypoints.camera):
        return 0
    return (context + 1) * len(keypoints.slots)


def build_config(
    cls: type, data: dict, where: str, nested_types: dict[type, dict[str, type]]
) -> Any:
    """``cls(**data)`` with the dataclasses ``nested_types[cls]`` names built from their
    dicts (recursively); unknown keys raise, naming ``where``."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {where} config keys {unknown}")
    nested = nested_types.get(cls, {})
    values = {}
    for key, value in data.items():
        if key in nested and isinstance(value, dict):
            value = build_config(nested[key], value, f"{where}.{key}", nested_types)
        values[key] = list(value) if isinstance(value, tuple) else value
    return cls(**values)
