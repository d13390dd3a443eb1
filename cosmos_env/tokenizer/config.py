"""Tokenizer configuration: one dataclass, named variants that state their compression."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class TokenizerConfig:
    """Architecture of a tokenizer; stored with its weights as ``config.json``.

    Compression: ``spatial_factor`` = 2**haar_levels * 2**(network spatial downsamples),
    ``temporal_factor`` = 2**temporal_haar * 2**(network temporal downsamples). A video of
    1 + k * temporal_factor frames gives 1 + k latent frames; temporal_factor 1 is an image
    tokenizer (one latent per frame, no mixing across time).
    """

    name: str = "CI8x8"
    kind: str = "continuous"  # continuous | discrete (FSQ)
    spatial_factor: int = 8
    temporal_factor: int = 1
    haar_levels: int = 2
    temporal_haar: bool = False  # one temporal Haar level in the patcher (video only)
    channels: list[int] = field(default_factory=lambda: [64, 128])  # width per resolution
    blocks: list[int] = field(default_factory=lambda: [1, 2])  # encoder res blocks per level
    decoder_blocks: list[int] = field(default_factory=lambda: [1, 3])
    attention: bool = True  # spatial (and, for video, causal temporal) attention at the bottom
    heads: int = 4
    latent_channels: int = 16  # continuous variant
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # discrete variant
    temporal_window: int = 8  # causal temporal attention sees this many latent frames
    groups: int = 8  # GroupNorm groups (per frame, so normalisation stays causal)

    def __post_init__(self) -> None:
        if self.kind not in ("continuous", "discrete"):
            raise ValueError(f"tokenizer kind must be continuous or discrete, got {self.kind!r}")
        for name in ("spatial_factor", "temporal_factor"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, got {value}")
        if self.spatial_downsamples < 0 or self.temporal_downsamples < 0:
            raise ValueError(
                f"{self.name}: the patcher alone compresses more than spatial_factor="
                f"{self.spatial_factor} / temporal_factor={self.temporal_factor}"
            )
        n_levels = self.spatial_downsamples + 1
        for name in ("channels", "blocks", "decoder_blocks"):
            if len(getattr(self, name)) != n_levels:
                raise ValueError(
                    f"{self.name}: {name} needs one entry per resolution ({n_levels}), "
                    f"got {getattr(self, name)}"
                )
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"channels {self.channels} must be divisible by groups={self.groups}")

    @property
    def spatial_downsamples(self) -> int:
        return int(math.log2(self.spatial_factor)) - self.haar_levels

    @property
    def temporal_downsamples(self) -> int:
        return int(math.log2(self.temporal_factor)) - int(self.temporal_haar)

    @property
    def is_video(self) -> bool:
        return self.temporal_factor > 1

    @property
    def code_channels(self) -> int:
        """Channels of the latent the decoder reads: C, or len(fsq_levels) for FSQ."""
        return self.latent_channels if self.kind == "continuous" else len(self.fsq_levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels) if self.kind == "discrete" else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TokenizerConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown tokenizer config keys {sorted(unknown)}")
        return cls(**data)
