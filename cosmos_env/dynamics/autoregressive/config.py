"""Autoregressive dynamics configuration: one dataclass for the discrete-token world model
(factorised token embedding and heads, Llama-style transformer, RoPE, parallel decoding);
stored with the weights as ``config.json``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cosmos_env.dynamics.text_conditioning import TEXT_NESTED, TextConfig
from cosmos_env.dynamics.track_config import (
    TRACK_NESTED,
    OutcomeHeadsConfig,
    StateTrackConfig,
    build_config,
    check_state_parts,
    keypoint_channels,
)


@dataclass
class ARConfig:
    """Architecture of an action-conditioned autoregressive world model over FSQ tokens.

    A frame is a ``latent_size x latent_size`` grid of token indices in
    ``[0, prod(levels))``; the model reads and predicts each token as its mixed-radix digits
    (one per FSQ level). The sequence is ``[f0, a0, f1, a1, ..., fK]``: ``context`` frames of
    ``latent_size**2`` tokens each, one action token after each frame, then the predicted
    frame.
    """

    kind: str = "autoregressive"
    levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])  # FSQ (DI8x8)
    latent_size: int = 8  # token grid side (64x64 frames through an 8x8 tokenizer)
    context: int = 4  # K past frames
    action_dim: int = 7
    state_dim: int = 36
    action_low: list[float] = field(default_factory=list)  # physical range of each action
    action_high: list[float] = field(default_factory=list)  # channel; training fills them in
    # transformer (Llama-style)
    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 2.75  # SwiGLU hidden = round(width * mlp_ratio)
    rope_base: float = 100.0  # RoPE frequency base per axis (positions here are small)
    # losses
    z_loss: float = 1e-4  # PaLM z-loss weight
    mask_prob_min: float = 0.0  # parallel (MaskGIT) mode: masked fraction of the last
    mask_prob_max: float = 1.0  # frame, cosine-distributed between these bounds
    # state probe
    probe_width: int = 128
    # Decoding: the release's sampling temperature (0 = argmax). Tokens are drawn digit by
    # digit from independent per-digit softmaxes; at temperature 1 the draws scatter over
    # neighbouring FSQ levels and the decoded frame gets noisier than the model's belief.
    temperature: float = 1.0
    # The shared state track (``dynamics/state_track.py``): its state of the next frame and
    # of the context frames conditions the transformer (see ``ARTransformer``); reward and
    # success are read from it. None: frames only, the probe reads the state.
    state_track: StateTrackConfig | None = None
    outcome_heads: OutcomeHeadsConfig | None = None
    text: TextConfig | None = None  # instruction conditioning (cross-attention on text)
    actions: bool = True  # the AR backend always reads them (action-free: backend=diffusion)
    # What the state's dims mean (``StateSpec.to_dict()``); training fills it in.
    state_spec: Any = None

    def __post_init__(self) -> None:
        if self.kind != "autoregressive":
            raise ValueError(f"AR config kind {self.kind!r} unsupported; use 'autoregressive'")
        if not self.actions:
            raise ValueError(
                "the AR backend conditions on actions: an action-free (instruction->video) "
                "world model is a diffusion one (backend=diffusion, dynamics.actions=false)"
            )
        self.levels = list(self.levels)
        if not self.levels or any(int(v) != v or v < 2 for v in self.levels):
            raise ValueError(f"levels must be integers >= 2 (FSQ levels), got {self.levels}")
        for name in ("latent_size", "context", "action_dim", "width", "depth", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        head_dim = self.width // self.heads
        if head_dim % 2 or head_dim < 6:
            raise ValueError(
                f"head dim width/heads = {head_dim} must be even and >= 6: RoPE rotates pairs "
                "of channels over three axes (time, row, column)"
            )
        if self.mlp_ratio <= 0 or self.rope_base <= 1:
            raise ValueError(
                f"need mlp_ratio > 0 and rope_base > 1, got {self.mlp_ratio}, {self.rope_base}"
            )
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = argmax), got {self.temperature}")
        if self.z_loss < 0:
            raise ValueError(f"z_loss weight must be >= 0, got {self.z_loss}")
        if not 0.0 <= self.mask_prob_min <= self.mask_prob_max <= 1.0 or self.mask_prob_max == 0:
            raise ValueError(
                "need 0 <= mask_prob_min <= mask_prob_max <= 1 and mask_prob_max > 0, got "
                f"{self.mask_prob_min}, {self.mask_prob_max}"
            )
        check_state_parts(self)
        if self.state_dim < 0 or self.probe_width < 1:
            raise ValueError(
                f"need state_dim >= 0 and probe_width >= 1, got {self.state_dim}, "
                f"{self.probe_width}"
            )

    @property
    def keypoint_channels(self) -> int:
        """Keypoint-map channels (K+1 frames x keypoints); 0 until a camera is set."""
        return keypoint_channels(self.state_track, self.context)

    @property
    def keypoints_per_frame(self) -> int:
        """Keypoints drawn for each frame (0 without keypoint maps)."""
        return self.keypoint_channels // (self.context + 1)

    @property
    def tokens_per_frame(self) -> int:
        """N = latent_size**2 tokens in one frame."""
        return self.latent_size**2

    @property
    def vocab_size(self) -> int:
        """Token vocabulary: the product of the FSQ levels (64000 for DI8x8)."""
        return math.prod(self.levels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ARConfig:
        return build_config(cls, dict(data), "autoregressive", _NESTED)


_NESTED: dict[type, dict[str, type]] = {
    ARConfig: {
        "state_track": StateTrackConfig,
        "outcome_heads": OutcomeHeadsConfig,
        "text": TextConfig,
    },
    **TEXT_NESTED,
    **TRACK_NESTED,
}
