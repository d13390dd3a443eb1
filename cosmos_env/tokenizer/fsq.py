"""Finite scalar quantisation (Mentzer et al., 2023): bound each channel, round to one of
L_i levels with a straight-through gradient; the product of levels is the codebook."""

from __future__ import annotations

import torch
from torch import nn


class FSQ(nn.Module):
    """Quantise (..., d) vectors, d = len(levels), to codes in [-1, 1] and indices in
    [0, prod(levels))."""

    def __init__(self, levels: list[int]) -> None:
        super().__init__()
        if not levels or any(level < 2 for level in levels):
            raise ValueError(f"FSQ levels must be >= 2 each, got {levels}")
        self.levels = list(levels)
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("_levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.int64), 0)
        self.register_buffer("_basis", basis, persistent=False)
        # Rounded values span [-(L//2), L - 1 - L//2]: digits are rounded + L//2.
        self.register_buffer("_half", torch.div(lv, 2, rounding_mode="floor"), persistent=False)

    @property
    def codebook_size(self) -> int:
        return int(torch.prod(self._levels).item())

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        # Even level counts get a half-step offset so that rounding hits L values exactly.
        half = (self._levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (..., d) in [-1, 1] on the level grid; gradients pass straight through."""
        bounded = self._bound(z)
        rounded = bounded + (torch.round(bounded) - bounded).detach()
        return rounded / self._half

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., d) codes -> (...) int64 indices."""
        digits = torch.round(codes * self._half + self._half).to(torch.int64)
        return (digits * self._basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...) int64 indices -> (..., d) codes in [-1, 1]."""
        if indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"token indices must be integers, got {indices.dtype}")
        if (indices < 0).any() or (indices >= self.codebook_size).any():
            raise ValueError(f"token indices must lie in [0, {self.codebook_size})")
        digits = (indices.to(torch.int64)[..., None] // self._basis) % self._levels.to(torch.int64)
        return (digits.float() - self._half) / self._half
