"""Dynamics configuration: one dataclass for the diffusion world model (network, EDM
noise schedule, context) and its state probe; stored with the weights as ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DynamicsConfig:
    """Architecture and noise schedule of an action-conditioned latent dynamics model.

    The model predicts latent frame ``t+1`` from ``context`` latent frames ``t-K+1..t`` and
    the actions taken after each of them. Latents are standardised per channel with the
    training data's mean and std, so ``sigma_data`` is 1.
    """

    kind: str = "diffusion"
    latent_channels: int = 16
    latent_size: int = 8  # latent height = width (64x64 frames through an 8x8 tokenizer)
    context: int = 4  # K past latent frames
    action_dim: int = 7
    state_dim: int = 36
    # DiT
    width: int = 256
    depth: int = 6
    heads: int = 4
    patch: int = 1
    mlp_ratio: float = 4.0
    adaln_rank: int = 64  # AdaLN-LoRA rank (Cosmos): a low-rank modulation per block
    conv_mlp: bool = True  # depthwise 3x3 conv over the token grid inside each MLP
    # EDM (Karras et al. 2022), as DIAMOND uses it for world models
    sigma_data: float = 1.0
    p_mean: float = 0.3  # log-normal training sigmas, centred high: few-step sampling
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 5.0
    rho: float = 7.0
    context_noise: float = 0.1  # max std of the augmentation noise on context latents
    action_dropout: float = 0.1  # drop the action for classifier-free guidance
    # state probe
    probe_width: int = 128
    # State track: a learned state dynamics carries the task state (object and gripper
    # poses) from step to step, and the denoiser is conditioned on the context's and the
    # next frame's states, so the arm and the cube are drawn where the state says they are
    # instead of where a blurred context suggests. Off for checkpoints made before it.
    state_track: bool = False
    state_width: int = 512  # hidden width of the state-dynamics MLP
    state_noise: float = 0.1  # max std of augmentation noise on conditioning states (std units)
    # Keypoint maps (state track only): these 3-D position slots of the state, projected by
    # ``camera`` (a (3, 4) matrix, row-major, from the StateSpec; training fills it in),
    # are drawn as Gaussian blobs on the token grid for every context frame and the next.
    keypoints: list[str] = field(default_factory=list)
    camera: list[float] = field(default_factory=list)
    keypoint_sigma: float = 0.75  # blob std in tokens
    # End-effector integrator (state track only): three action channels (the StateSpec's
    # end_effector.action_delta, Bridge's dx, dy, dz) are
    # end-effector position deltas, so this 3-D slot of the state
    # moves by them, clipped to the range the training states span; the MLP learns only
    # what is left (controller lag, contacts). An MLP alone drifts by centimetres over 16
    # steps: it reproduces neither an exact sum nor the clip where the arm meets the table.
    ee_slot: str = ""
    action_low: list[float] = field(default_factory=list)  # physical range of each action
    action_high: list[float] = field(default_factory=list)  # channel; training fills them in
    # Contact features (needs ee_slot): the state MLP also reads these 3-D slots' offsets
    # from the end effector in every context frame and their last one-step change. An
    # object moves when the gripper touches it; on absolute positions alone the MLP learns
    # "the cube moves towards the zone when the arm does", which a planner exploits.
    state_relative: list[str] = field(default_factory=list)
    # Gripper-frame head (needs state_relative): the planar motion of these objects (names:
    # slots <name>_pos and <name>_quat) is predicted in the frame of the end effector's yaw
    # (``frame_quat``, its orientation slot) from features that do not change when the
    # scene is shifted or turned, then rotated back (``dynamics/gripper_frame.py``).
    frame_objects: list[str] = field(default_factory=list)
    frame_quat: str = ""
    frame_width: int = 256
    # What the state's dims mean (``StateSpec.to_dict()``): the slot names above are looked
    # up in it. Training fills it in from the store; a release carries it.
    state_spec: Any = None
    # Learned reward / termination / success heads (``dynamics/outcome_heads.py``) on the
    # state before and after a step and its action: what an env scores with when its world
    # has no function for them.
    outcome_heads: bool = False
    outcome_width: int = 256

    def __post_init__(self) -> None:
        if self.kind != "diffusion":
            raise ValueError(f"dynamics kind {self.kind!r} unsupported here; use 'diffusion'")
        if self.width % self.heads or (self.width // self.heads) % 4:
            raise ValueError(f"width {self.width} must split into {self.heads} heads of 4k dims")
        if self.latent_size % self.patch:
            raise ValueError(f"latent_size {self.latent_size} not divisible by patch {self.patch}")
        if self.context < 1:
            raise ValueError(f"context must be >= 1 frame, got {self.context}")
        if self.keypoints and not self.state_track:
            raise ValueError("keypoints are drawn from the state track: set state_track=true")
        if self.ee_slot and not self.state_track:
            raise ValueError("ee_slot integrates the state track: set state_track=true")
        if self.state_relative and not self.ee_slot:
            raise ValueError("state_relative offsets are taken from ee_slot: set ee_slot")
        if self.frame_objects and not (self.state_relative and self.frame_quat):
            raise ValueError(
                "frame_objects are predicted in the end effector's frame from the offsets of "
                "state_relative: set state_relative and frame_quat (e.g. gripper_quat)"
            )
        for name in ("action_low", "action_high"):
            bounds = getattr(self, name)
            if bounds and len(bounds) != self.action_dim:
                raise ValueError(
                    f"{name} needs one value per action channel ({self.action_dim}), got "
                    f"{len(bounds)}"
                )
        if self.camera and len(self.camera) != 12:
            raise ValueError(
                f"camera must be a (3, 4) projection (12 numbers), got {len(self.camera)}"
            )

    @property
    def keypoint_channels(self) -> int:
        """Map channels (K+1 frames x keypoints) the network reads; 0 until a camera is set."""
        if not (self.keypoints and self.camera):
            return 0
        return (self.context + 1) * len(self.keypoints)

    @property
    def tokens(self) -> int:
        return (self.latent_size // self.patch) ** 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DynamicsConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown dynamics config keys {sorted(unknown)}")
        return cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in data.items()})
