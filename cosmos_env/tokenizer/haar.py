"""The Haar wavelet patcher: an orthonormal, exactly invertible 2x2 (and 2x in time) split
that moves resolution into channels before any learned layer, as Cosmos's Patcher3D does."""

from __future__ import annotations

import torch


def haar_down(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 4C, H/2, W/2): the LL, LH, HL, HH sub-bands."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], dim=1) * 0.5


def haar_up(y: torch.Tensor) -> torch.Tensor:
    """Inverse of `haar_down`: (N, 4C, H, W) -> (N, C, 2H, 2W)."""
    ll, lh, hl, hh = y.chunk(4, dim=1)
    n, c, h, w = ll.shape
    out = y.new_empty(n, c, 2 * h, 2 * w)
    out[..., 0::2, 0::2] = (ll + lh + hl + hh) * 0.5
    out[..., 0::2, 1::2] = (ll - lh + hl - hh) * 0.5
    out[..., 1::2, 0::2] = (ll + lh - hl - hh) * 0.5
    out[..., 1::2, 1::2] = (ll - lh - hl + hh) * 0.5
    return out


def patch(video: torch.Tensor, levels: int, temporal: bool) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, T', 3 * 4**levels * (2 if temporal), H / 2**levels, W / 2**levels).

    With ``temporal``, the first frame is repeated once so that 1 + 2k frames become k + 1
    pairs; the first pair then holds the first frame alone (causality).
    """
    b, t = video.shape[:2]
    x = video.flatten(0, 1)
    for _ in range(levels):
        x = haar_down(x)
    x = x.unflatten(0, (b, t))
    if temporal:
        x = torch.cat([x[:, :1], x], dim=1)
        even, odd = x[:, 0::2], x[:, 1::2]
        x = torch.cat([even + odd, odd - even], dim=2) * 2**-0.5
    return x


def unpatch(x: torch.Tensor, levels: int, temporal: bool) -> torch.Tensor:
    """Inverse of `patch`."""
    if temporal:
        low, high = x.chunk(2, dim=2)
        even, odd = (low - high) * 2**-0.5, (low + high) * 2**-0.5
        x = torch.stack([even, odd], dim=2).flatten(1, 2)[:, 1:]
    b, t = x.shape[:2]
    y = x.flatten(0, 1)
    for _ in range(levels):
        y = haar_up(y)
    return y.unflatten(0, (b, t))
