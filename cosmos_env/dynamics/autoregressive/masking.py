"""The MaskGIT schedule of the parallel mode: which tokens of a frame a training sample
hides, and which a decoding pass re-masks. Randomness only from the generator passed in."""

from __future__ import annotations

import math

import torch


def training_mask(
    batch: int,
    tokens: int,
    ratio_min: float,
    ratio_max: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(batch, tokens) bool: each row hides ``ceil(r * tokens)`` (at least 1) random
    tokens, ``r = min + (max - min) * cos(pi/2 * u)``, u ~ U(0, 1) (the cosine schedule)."""
    u = torch.rand(batch, generator=generator, device=device)
    ratio = ratio_min + (ratio_max - ratio_min) * torch.cos(math.pi / 2 * u)
    count = (ratio * tokens).ceil().clamp(1, tokens)  # (B,)
    rank = torch.rand(batch, tokens, generator=generator, device=device).argsort(1).argsort(1)
    return rank < count[:, None]


def remask(
    confidence: torch.Tensor,
    masked: torch.Tensor,
    step: int,
    steps: int,
    choice_temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The tokens (B, N) bool to hide again after decoding pass ``step`` of ``steps``: the
    ``floor(N * cos(pi/2 * (step+1)/steps))`` least confident of those ``masked`` (B, N)
    in this pass (``confidence`` (B, N), plus Gumbel noise scaled by
    ``choice_temperature * (1 - progress)``); tokens decided earlier stay decided."""
    n = masked.shape[1]
    keep_masked = math.floor(n * math.cos(math.pi / 2 * (step + 1) / steps))
    conf = confidence.masked_fill(~masked, float("inf"))
    if choice_temperature > 0:
        u = torch.rand(conf.shape, generator=generator, device=conf.device).clamp_min(1e-20)
        conf = conf + choice_temperature * (1 - (step + 1) / steps) * -(-u.log()).log()
    lowest = conf.topk(keep_masked, dim=1, largest=False).indices  # (B, keep_masked)
    return torch.zeros_like(masked).scatter_(1, lowest, True)
