"""Losses of the factorised token heads: cross-entropy summed over the FSQ digits, a
z-loss on each head's logsumexp, and whole-token accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cosmos_env.dynamics.autoregressive.layers import digits


def token_losses(
    logits: list[torch.Tensor],
    target: torch.Tensor,
    levels: list[int],
    z_loss: float,
    keep: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Losses of per-digit logits (..., levels[i]) against token indices (...), over the
    tokens where ``keep`` (...) is True (all when None). ``loss`` = ``ce`` + ``z_loss``;
    ``ce``: cross-entropy summed over digits, mean over tokens; ``z_loss``: the weight times
    the sum over heads of the mean squared logsumexp; ``accuracy``: the fraction of tokens
    with every digit right."""
    target = digits(target, levels)  # (..., L)
    if keep is not None:
        logits, target = [lg[keep] for lg in logits], target[keep]
    ce = z = 0.0
    correct = torch.ones(target.shape[:-1], dtype=torch.bool, device=target.device)
    for i, lg in enumerate(logits):
        lg, t = lg.float().flatten(0, -2), target[..., i].flatten()  # (M, l_i), (M,)
        ce = ce + F.cross_entropy(lg, t)
        z = z + torch.logsumexp(lg, -1).pow(2).mean()
        correct &= (lg.argmax(-1) == t).view(correct.shape)
    z = z_loss * z
    return {"loss": ce + z, "ce": ce, "z_loss": z, "accuracy": correct.float().mean()}
