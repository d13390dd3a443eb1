"""Building blocks working on (B, T, C, H, W) tensors: spatial ops see one frame at a time,
temporal ops are causal (left padding repeats the first frame), and normalisation is per
frame, so that no latent ever depends on a later frame."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _frames(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1)  # (B, T, C, H, W) -> (B*T, C, H, W)


class FrameNorm(nn.GroupNorm):
    """GroupNorm over each frame's (C, H, W): statistics never mix frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_frames(x)).view_as(x)


class SpatialConv(nn.Conv2d):
    """A 1x3x3 (or 1xkxk) convolution applied to every frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(_frames(x))
        return y.unflatten(0, x.shape[:2])


def temporal_reach(module: nn.Module) -> int:
    """How many earlier frames (at the module's own frame rate) one output frame can see."""
    return getattr(module, "reach", 0)


class CausalTemporalConv(nn.Module):
    """A kx1x1 convolution in time whose output at t sees frames t-k+1..t only."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.reach = kernel - 1
        self.conv = nn.Conv1d(channels, channels, kernel)
        nn.init.zeros_(self.conv.weight)  # starts as identity through the residual path
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, c, t)  # (BHW, C, T)
        seq = torch.cat([seq[..., :1].expand(-1, -1, self.kernel - 1), seq], dim=-1)
        y = self.conv(seq).reshape(b, h, w, c, t).permute(0, 4, 3, 1, 2)
        return x + y


class ResBlock(nn.Module):
    """Factorised causal residual block: norm, SiLU, 1x3x3 conv (+ causal 3x1x1 conv), twice."""

    def __init__(self, c_in: int, c_out: int, groups: int, temporal: bool) -> None:
        super().__init__()
        self.norm1 = FrameNorm(groups, c_in)
        self.conv1 = SpatialConv(c_in, c_out, 3, padding=1)
        self.norm2 = FrameNorm(groups, c_out)
        self.conv2 = SpatialConv(c_out, c_out, 3, padding=1)
        self.time1 = CausalTemporalConv(c_out) if temporal else nn.Identity()
        self.time2 = CausalTemporalConv(c_out) if temporal else nn.Identity()
        self.skip = SpatialConv(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.reach = temporal_reach(self.time1) + temporal_reach(self.time2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.time1(self.conv1(F.silu(self.norm1(x))))
        h = self.time2(self.conv2(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Self-attention among the H*W positions of each frame."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = FrameNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        tokens = self.norm(x).flatten(0, 1).flatten(2).transpose(1, 2)  # (BT, HW, C)
        q, k, v = self.qkv(tokens).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (BT, heads, HW, C/heads)
        y = self.out(y.transpose(1, 2).flatten(2))  # (BT, HW, C)
        return x + y.transpose(1, 2).reshape(b, t, c, h, w)


class CausalTemporalAttention(nn.Module):
    """Self-attention along time at each position, each frame seeing itself and at most
    ``window - 1`` earlier frames (a bounded window keeps chunked encoding exact)."""

    def __init__(self, channels: int, heads: int, groups: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.reach = window - 1
        self.norm = FrameNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        tokens = self.norm(x).permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)  # (BHW, T, C)
        q, k, v = self.qkv(tokens).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        idx = torch.arange(t, device=x.device)
        lag = idx[:, None] - idx[None, :]
        mask = (lag >= 0) & (lag < self.window)  # (T, T): True = may attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = self.out(y.transpose(1, 2).flatten(2))  # (BHW, T, C)
        return x + y.reshape(b, h, w, t, c).permute(0, 3, 4, 1, 2)


class SpatialDown(nn.Module):
    """Halve H and W with a strided 3x3 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = SpatialConv(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialUp(nn.Module):
    """Double H and W: a 3x3 conv to 4x channels, then pixel shuffle."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = SpatialConv(c_in, 4 * c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(_frames(self.conv(x)), 2)
        return y.unflatten(0, x.shape[:2])


class CausalTimeDown(nn.Module):
    """Halve time causally: 1 + 2k frames -> 1 + k. The first frame is repeated once, then
    each output mixes frames (2j-1, 2j), so output 0 sees frame 0 alone."""

    time_stride = 2

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mix = nn.Linear(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 2 != 1:
            raise ValueError(f"causal time downsampling needs 1 + 2k frames, got {x.shape[1]}")
        x = torch.cat([x[:, :1], x], dim=1)
        pairs = torch.cat([x[:, 0::2], x[:, 1::2]], dim=2)  # (B, k+1, 2C, H, W)
        return self.mix(pairs.movedim(2, -1)).movedim(-1, 2)


class CausalTimeUp(nn.Module):
    """Inverse shape of `CausalTimeDown`: 1 + k frames -> 1 + 2k; latent j makes frames
    2j-1 and 2j (the padding frame made by latent 0 is dropped)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.split = nn.Linear(channels, 2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.split(x.movedim(2, -1)).movedim(-1, 2)  # (B, T, 2C, H, W)
        first, second = y.chunk(2, dim=2)
        return torch.stack([first, second], dim=2).flatten(1, 2)[:, 1:]
