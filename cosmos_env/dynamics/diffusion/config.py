"""The diffusion world model's configuration, composed of one dataclass per part: the DiT
network, the EDM noise schedule, the optional state track (with its optional features) and
the optional outcome heads. Stored with the weights as ``config.json``; `DiffusionConfig.
from_dict` also reads the flat layout that releases written before the split carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cosmos_env.dynamics.text_conditioning import TEXT_NESTED, TextConfig
from cosmos_env.dynamics.track_config import (
    TRACK_NESTED,
    ContactConfig,
    FrameHeadConfig,
    IntegratorConfig,
    KeypointsConfig,
    OutcomeHeadsConfig,
    StateTrackConfig,
    build_config,
    check_state_parts,
    keypoint_channels,
)

__all__ = [  # the track's parts, re-exported: releases and tests name them from here
    "ContactConfig",
    "DiTConfig",
    "DiffusionConfig",
    "EDMConfig",
    "FrameHeadConfig",
    "IntegratorConfig",
    "KeypointsConfig",
    "OutcomeHeadsConfig",
    "StateTrackConfig",
    "TextConfig",
]


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
    text: TextConfig | None = None  # instruction conditioning (cross-attention on text)
    # False: an instruction->video model (Cosmos's 1X task) that reads frames, states and the
    # instruction but no actions; its action_dim is 0 whatever the store's action spec.
    actions: bool = True
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
        if not self.actions:
            self.action_dim, self.action_low, self.action_high = 0, [], []
        check_state_parts(self)

    @property
    def keypoint_channels(self) -> int:
        """Map channels (K+1 frames x keypoints) the network reads; 0 until a camera is set."""
        return keypoint_channels(self.state_track, self.context)

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
        return build_config(cls, data, "dynamics", _NESTED)


_NESTED: dict[type, dict[str, type]] = {
    DiffusionConfig: {
        "net": DiTConfig,
        "edm": EDMConfig,
        "state_track": StateTrackConfig,
        "outcome_heads": OutcomeHeadsConfig,
        "text": TextConfig,
    },
    **TEXT_NESTED,
    **TRACK_NESTED,
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
