"""The transformer's building blocks: FSQ digit helpers (token index <-> digits), 3-axis
rotary position embeddings, and the pre-norm attention + SwiGLU block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_env.dynamics.norms import RMSNorm
from cosmos_env.dynamics.text_conditioning import TextCrossAttention


def _basis(levels: list[int], device: torch.device) -> torch.Tensor:
    return torch.cumprod(torch.tensor([1] + list(levels[:-1]), device=device), 0)  # (L,)


def digits(indices: torch.Tensor, levels: list[int]) -> torch.Tensor:
    """Token indices (...) -> FSQ digits (..., L), mixed radix with the first level least
    significant (``index = d0 + l0 * d1 + l0 * l1 * d2 + ...``), as ``FSQ.codes_to_indices``."""
    lv = torch.tensor(levels, device=indices.device)
    return (indices.long()[..., None] // _basis(levels, indices.device)) % lv


def indices(digits: torch.Tensor, levels: list[int]) -> torch.Tensor:
    """FSQ digits (..., L) -> token indices (...) int64; the inverse of ``digits``."""
    return (digits.long() * _basis(levels, digits.device)).sum(-1)


class Rotary(nn.Module):
    """Positions (n, 3) = (time, row, column) -> cos, sin (n, Dh/2) for 3-axis RoPE: of
    the Dh/2 rotated channel pairs, a third (rounded down) turns with the row, as many
    with the column, the rest with time."""

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        pairs = head_dim // 2
        sizes = [pairs - 2 * (pairs // 3), pairs // 3, pairs // 3]
        inv_freq = torch.cat([base ** (-torch.arange(n, dtype=torch.float32) / n) for n in sizes])
        axis = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (Dh/2,)
        self.register_buffer("axis", axis, persistent=False)  # (Dh/2,) which axis each pair

    def forward(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = pos[:, self.axis].float() * self.inv_freq  # (n, Dh/2)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, n, Dh) by angles (n, Dh/2): channel i pairs with channel i + Dh/2."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with RoPE and RMS-normalised queries and keys.

    x (B, n, D) new tokens; ``rope`` their cos, sin (n, Dh/2); ``past`` cached (k, v)
    (B, H, m, Dh) or None; ``mask`` (n, m + n) bool (True attends) or None; ``causal``
    (only without past). Returns the output (B, n, D) and the keys and values the new tokens
    attended to, the past's first: (B, H, m + n, Dh), the cache after appending them.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_norm = RMSNorm(width // heads)
        self.k_norm = RMSNorm(width // heads)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        past: tuple[torch.Tensor, torch.Tensor] | None,
        mask: torch.Tensor | None,
        causal: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q = apply_rotary(self.q_norm(q), *rope)  # (B, H, n, Dh)
        k = apply_rotary(self.k_norm(k), *rope)
        if past is not None:  # (B, H, m + n, Dh) with the m cached tokens first
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, d)), k, v


class SwiGLU(nn.Module):
    """(B, n, D) -> (B, n, D): down(silu(gate(x)) * up(x))."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(width, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then (instruction models) the text
    cross-attention, then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int, hidden: int, text_width: int = 0) -> None:
        super().__init__()
        self.norm1 = RMSNorm(width)
        self.attn = Attention(width, heads)
        self.cross = TextCrossAttention(width, text_width, heads) if text_width else None
        self.norm2 = RMSNorm(width)
        self.mlp = SwiGLU(width, hidden)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        past: tuple[torch.Tensor, torch.Tensor] | None,
        mask: torch.Tensor | None,
        causal: bool,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, k, v = self.attn(self.norm1(x), rope, past, mask, causal)
        x = x + h
        if self.cross is not None:
            if text is None:
                raise ValueError("this model follows instructions; pass text tokens (B, L, D)")
            x = self.cross(x, *text)
        return x + self.mlp(self.norm2(x)), k, v
