"""The diffusion world model's configuration, composed of one dataclass per part: the DiT
network, the EDM noise schedule, the optional state track (with its optional features) and
the optional outcome heads. Stored with the weights as ``config.json``; `DiffusionConfig.
from_dict` also reads the flat layout that releases written before the split carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class DiTConfig:
    """The denoiser network: a DiT over the next frame's latent tokens."""

    width: int = 256
    depth: int = 6
    heads: int = 4
    patch: int = 1
    mlp_ratio: float = 4.0
    adaln_rank: int = 64  # AdaLN-LoRA rank (Cosmos): a low-rank modulation per block
    conv_mlp: bool = True  # depthwise 3x3 conv over the token grid inside each MLP


@dataclass
class EDMConfig:
    """EDM (Karras et al. 2022) training and sampling, as DIAMOND uses it for world models."""

    sigma_data: float = 1.0
    p_mean: float = 0.3  # log-normal training sigmas, centred high: few-step sampling
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 5.0
    rho: float = 7.0
    context_noise: float = 0.1  # max std of the augmentation noise on context latents
    action_dropout: float = 0.1  # drop the action for classifier-free guidance


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


@dataclass
class DiffusionConfig:
    """An action-conditioned latent diffusion world model: predicts latent frame ``t+1``
    from ``context`` latent frames ``t-K+1..t`` and the actions taken after each. Latents
    are standardised per channel with the training data's stats, so ``edm.sigma_data`` is
    1. Shapes (dims, action range, state spec) are filled in from the stores by training.
    """

    kind: str = "diffusion"
    latent_channels: int = 16
    latent_size: int = 8  # latent height = width (64x64 frames through an 8x8 tokenizer)
    context: int = 4  # K past latent frames
    action_dim: int = 7
    state_dim: int = 36
    action_low: list[float] = field(default_factory=list)  # physical range of each action
    action_high: list[float] = field(default_factory=list)  # channel; training fills them in
    net: DiTConfig = field(default_factory=DiTConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    probe_width: int = 128  # the convolutional state probe
    state_track: StateTrackConfig | None = None
    outcome_heads: OutcomeHeadsConfig | None = None
    # What the state's dims mean (``StateSpec.to_dict()``): slot names are looked up in it.
    state_spec: Any = None

    def __post_init__(self) -> None:
        if self.kind != "diffusion":
            raise ValueError(f"dynamics kind {self.kind!r} unsupported here; use 'diffusion'")
        net = self.net
        if net.width % net.heads or (net.width // net.heads) % 4:
            raise ValueError(f"width {net.width} must split into {net.heads} heads of 4k dims")
        if self.latent_size % net.patch:
            raise ValueError(f"latent_size {self.latent_size} not divisible by patch {net.patch}")
        if self.context < 1:
            raise ValueError(f"context must be >= 1 frame, got {self.context}")
        if self.state_track is not None:
            _check_track(self.state_track)
        for name in ("action_low", "action_high"):
            bounds = getattr(self, name)
            if bounds and len(bounds) != self.action_dim:
                raise ValueError(
                    f"{name} needs one value per action channel ({self.action_dim}), got "
                    f"{len(bounds)}"
                )

    @property
    def keypoint_channels(self) -> int:
        """Map channels (K+1 frames x keypoints) the network reads; 0 until a camera is set."""
        keypoints = self.state_track.keypoints if self.state_track else None
        if not (keypoints and keypoints.slots and keypoints.camera):
            return 0
        return (self.context + 1) * len(keypoints.slots)

    @property
    def tokens(self) -> int:
        return (self.latent_size // self.net.patch) ** 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        """Build from ``to_dict()``'s layout, or from the flat one of older releases."""
        if "net" not in data:
            data = flat_to_composed(data)
        return _build(cls, data, "dynamics")


def _check_track(track: StateTrackConfig) -> None:
    if track.contact and not track.integrator:
        raise ValueError("contact offsets are taken from the end effector: set the integrator")
    if track.frame_head and not track.contact:
        raise ValueError(
            "frame_head objects are predicted from the contact features' offsets: set contact"
        )
    if track.frame_head and not track.frame_head.quat:
        raise ValueError("frame_head needs the end effector's orientation slot: set its quat")
    camera = track.keypoints.camera if track.keypoints else []
    if camera and len(camera) != 12:
        raise ValueError(f"camera must be a (3, 4) projection (12 numbers), got {len(camera)}")


def _build(cls: type, data: dict, where: str) -> Any:
    """``cls(**data)`` with nested dataclasses built from their dicts; unknown keys raise."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {where} config keys {unknown}")
    nested = _NESTED.get(cls, {})
    values = {}
    for key, value in data.items():
        if key in nested and isinstance(value, dict):
            value = _build(nested[key], value, f"{where}.{key}")
        values[key] = list(value) if isinstance(value, tuple) else value
    return cls(**values)


_NESTED: dict[type, dict[str, type]] = {
    DiffusionConfig: {
        "net": DiTConfig,
        "edm": EDMConfig,
        "state_track": StateTrackConfig,
        "outcome_heads": OutcomeHeadsConfig,
    },
    StateTrackConfig: {
        "integrator": IntegratorConfig,
        "contact": ContactConfig,
        "keypoints": KeypointsConfig,
        "frame_head": FrameHeadConfig,
    },
}


def flat_to_composed(flat: dict) -> dict:
    """The key map from the flat 35-field layout (releases before the split) to this one."""
    flat = dict(flat)
    pick = lambda cls: {f.name: flat.pop(f.name) for f in fields(cls) if f.name in flat}  # noqa: E731
    out: dict[str, Any] = {"net": pick(DiTConfig), "edm": pick(EDMConfig)}
    track_on, width = flat.pop("state_track", False), flat.pop("state_width", 512)
    noise, ee_slot = flat.pop("state_noise", 0.1), flat.pop("ee_slot", "")
    relative, keypoints = flat.pop("state_relative", []), flat.pop("keypoints", [])
    camera, sigma = flat.pop("camera", []), flat.pop("keypoint_sigma", 0.75)
    objects, quat = flat.pop("frame_objects", []), flat.pop("frame_quat", "")
    frame_width = flat.pop("frame_width", 256)
    heads_on, heads_width = flat.pop("outcome_heads", False), flat.pop("outcome_width", 256)
    parts = {"ee_slot": ee_slot, "state_relative": relative, "keypoints": keypoints}
    named = [k for k, v in {**parts, "frame_objects": objects, "camera": camera}.items() if v]
    if named and not track_on:
        raise ValueError(f"{', '.join(named)} are parts of the state track: set state_track")
    if track_on:
        out["state_track"] = {
            "width": width,
            "noise": noise,
            "integrator": {"slot": ee_slot} if ee_slot else None,
            "contact": {"slots": relative} if relative else None,
            "keypoints": {"slots": keypoints, "camera": camera, "sigma": sigma}
            if keypoints or camera
            else None,
            "frame_head": {"objects": objects, "quat": quat, "width": frame_width}
            if objects
            else None,
        }
    out["outcome_heads"] = {"width": heads_width} if heads_on else None
    return {**flat, **out}
