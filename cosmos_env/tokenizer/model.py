"""The causal video tokenizer: Haar patcher, encoder, (FSQ), decoder.

Public tensors follow the project contract: video (B, 3, T, H, W) float in [-1, 1];
latents (B, C, T', H/s, W/s); token indices (B, T', H/s, W/s) int64.
"""

from __future__ import annotations

import torch
from torch import nn

from cosmos_env.tokenizer import haar
from cosmos_env.tokenizer.config import TokenizerConfig
from cosmos_env.tokenizer.fsq import FSQ
from cosmos_env.tokenizer.layers import (
    CausalTemporalAttention,
    CausalTimeDown,
    CausalTimeUp,
    FrameNorm,
    ResBlock,
    SpatialAttention,
    SpatialConv,
    SpatialDown,
    SpatialUp,
    temporal_reach,
)


def _bottleneck(cfg: TokenizerConfig, channels: int) -> list[nn.Module]:
    if not cfg.attention:
        return []
    layers: list[nn.Module] = [SpatialAttention(channels, cfg.heads, cfg.groups)]
    if cfg.is_video:
        layers.append(CausalTemporalAttention(channels, cfg.heads, cfg.groups, cfg.temporal_window))
    return layers


class Encoder(nn.Module):
    """Patched video (B, T', C_patch, h, w) -> pre-quantisation latent (B, T'', C_z, h/d, w/d)."""

    def __init__(self, cfg: TokenizerConfig, patch_channels: int) -> None:
        super().__init__()
        ch, temporal = cfg.channels, cfg.is_video
        layers: list[nn.Module] = [SpatialConv(patch_channels, ch[0], 3, padding=1)]
        time_downs = cfg.temporal_downsamples
        for level, width in enumerate(ch):
            layers += [
                ResBlock(width, width, cfg.groups, temporal) for _ in range(cfg.blocks[level])
            ]
            if level + 1 < len(ch):
                layers.append(SpatialDown(width, ch[level + 1]))
                if time_downs > 0:
                    layers.append(CausalTimeDown(ch[level + 1]))
                    time_downs -= 1
        while time_downs > 0:  # more temporal than spatial steps: finish at the bottom
            layers.append(CausalTimeDown(ch[-1]))
            time_downs -= 1
        layers += _bottleneck(cfg, ch[-1])
        layers += [
            FrameNorm(cfg.groups, ch[-1]),
            nn.SiLU(),
            SpatialConv(ch[-1], cfg.code_channels, 1),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def reach(self) -> int:
        """Earlier patched frames that one latent frame can depend on (its receptive field)."""
        reach = 0
        for layer in reversed(self.layers):
            # Map the reach back through a 2x causal downsample: j-r..j needs 2(j-r)-1..2j.
            reach = reach * getattr(layer, "time_stride", 1) + (
                1 if hasattr(layer, "time_stride") else 0
            )
            reach += temporal_reach(layer)
        return reach


class Decoder(nn.Module):
    """Latent (B, T'', C_z, h/d, w/d) -> patched video (B, T', C_patch, h, w)."""

    def __init__(self, cfg: TokenizerConfig, patch_channels: int) -> None:
        super().__init__()
        ch, temporal = cfg.channels[::-1], cfg.is_video
        blocks = cfg.decoder_blocks[::-1]
        layers: list[nn.Module] = [SpatialConv(cfg.code_channels, ch[0], 3, padding=1)]
        layers += _bottleneck(cfg, ch[0])
        time_ups = cfg.temporal_downsamples
        extra_ups = max(0, time_ups - (len(ch) - 1))
        for _ in range(extra_ups):
            layers.append(CausalTimeUp(ch[0]))
        time_ups -= extra_ups
        for level, width in enumerate(ch):
            layers += [ResBlock(width, width, cfg.groups, temporal) for _ in range(blocks[level])]
            if level + 1 < len(ch):
                if time_ups > 0 and len(ch) - 1 - level <= time_ups:
                    layers.append(CausalTimeUp(width))
                    time_ups -= 1
                layers.append(SpatialUp(width, ch[level + 1]))
        layers += [
            FrameNorm(cfg.groups, ch[-1]),
            nn.SiLU(),
            SpatialConv(ch[-1], patch_channels, 3, padding=1),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


class Tokenizer(nn.Module):
    """Continuous (autoencoder) or discrete (FSQ) causal video tokenizer."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        patch_channels = 3 * 4**cfg.haar_levels * (2 if cfg.temporal_haar else 1)
        self.encoder = Encoder(cfg, patch_channels)
        self.decoder = Decoder(cfg, patch_channels)
        self.fsq = FSQ(cfg.fsq_levels) if cfg.kind == "discrete" else None

    # ---------------------------------------------------------------------------- checks
    def check_video(self, video: torch.Tensor) -> torch.Tensor:
        """Accept (B, 3, T, H, W) or an image batch (B, 3, H, W); return (B, T, 3, H, W)."""
        if video.dim() == 4:
            video = video.unsqueeze(2)
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(
                f"expected video (B, 3, T, H, W) or images (B, 3, H, W), got {tuple(video.shape)}"
            )
        if not video.is_floating_point():
            raise ValueError(f"expected float video in [-1, 1], got dtype {video.dtype}")
        _, _, t, h, w = video.shape
        s, st = self.cfg.spatial_factor, self.cfg.temporal_factor
        if h % s or w % s:
            raise ValueError(
                f"{self.cfg.name}: frame size {h}x{w} is not divisible by the spatial factor {s}; "
                f"crop or resize to a multiple of {s}"
            )
        if (t - 1) % st:
            raise ValueError(
                f"{self.cfg.name}: {t} frames cannot be tokenized; a video needs 1 + k*{st} "
                f"frames (e.g. {1 + st * max(1, (t - 1) // st)})"
            )
        return video.transpose(1, 2)

    # ------------------------------------------------------------------------- public API
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Video (B, 3, T, H, W) or images (B, 3, H, W) in [-1, 1] -> latent
        (B, C, 1 + (T-1)/s_t, H/s, W/s); for the discrete variant, FSQ codes in [-1, 1]."""
        x = haar.patch(self.check_video(video), self.cfg.haar_levels, self.cfg.temporal_haar)
        z = self.encoder(x)
        if self.fsq is not None:
            z = self.fsq(z.movedim(2, -1)).movedim(-1, 2)
        return z.transpose(1, 2)

    def encode_long(self, video: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """`encode` for videos longer than the training clips: ``chunk`` latent frames at a
        time, each from just the input frames its receptive field covers, so memory stays
        bounded and the latents equal those of `encode` on the whole video."""
        b, _, t, h, w = video.shape
        st = self.cfg.temporal_factor
        self.check_video(video)
        n_latent = 1 + (t - 1) // st
        patched_per_latent = st // (2 if self.cfg.temporal_haar else 1)
        context = -(-self.encoder.reach() // patched_per_latent)  # in latent frames, rounded up
        pieces = []
        for first in range(0, n_latent, chunk):
            last = min(n_latent, first + chunk)
            begin = max(0, first - context)
            # Latent j covers input frames 1 + (j-1)*st .. j*st (latent 0: frame 0 alone).
            frames = video[:, :, (0 if begin == 0 else 1 + (begin - 1) * st) : 1 + (last - 1) * st]
            if begin > 0:  # a clip must start with a lone frame: lead with the frame before
                frames = torch.cat(
                    [video[:, :, (begin - 1) * st : (begin - 1) * st + 1], frames], dim=2
                )
                latent = self.encode(frames)[:, :, first - begin + 1 :]
            else:
                latent = self.encode(frames)[:, :, first:]
            pieces.append(latent)
        return torch.cat(pieces, dim=2)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (B, C, T', h, w) -> video (B, 3, 1 + (T'-1)*s_t, h*s, w*s), roughly in [-1, 1]."""
        if latent.dim() != 5 or latent.shape[1] != self.cfg.code_channels:
            raise ValueError(
                f"{self.cfg.name}: expected latent (B, {self.cfg.code_channels}, T, h, w), "
                f"got {tuple(latent.shape)}"
            )
        x = self.decoder(latent.transpose(1, 2))
        return haar.unpatch(x, self.cfg.haar_levels, self.cfg.temporal_haar).transpose(1, 2)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (B, 3, T, H, W), latent) for training."""
        latent = self.encode(video)
        return self.decode(latent), latent

    def tokenize(self, video: torch.Tensor) -> torch.Tensor:
        """Discrete variant: video -> token indices (B, T', h, w) int64."""
        if self.fsq is None:
            raise ValueError(f"{self.cfg.name} is a continuous tokenizer; it has no token indices")
        return self.fsq.codes_to_indices(self.encode(video).movedim(1, -1))

    def detokenize(self, indices: torch.Tensor) -> torch.Tensor:
        """Discrete variant: token indices (B, T', h, w) -> video (B, 3, T, H, W)."""
        if self.fsq is None:
            raise ValueError(f"{self.cfg.name} is a continuous tokenizer; it has no token indices")
        return self.decode(self.fsq.indices_to_codes(indices).movedim(-1, 1))
