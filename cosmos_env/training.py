"""Pieces every training loop here shares: the learning-rate schedule over a step or
wall-clock budget, the optimiser step with clipping, EMA weights and the log file."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch


def budget_lr(
    base_lr: float, warmup: int, steps: int, max_minutes: float, step: int, elapsed: float
) -> float:
    """Warmup, then cosine to 2% over whichever budget (steps or minutes) runs out first."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    by_steps = (step - warmup) / max(1, steps - warmup)
    progress = max(by_steps, elapsed / (max_minutes * 60))
    return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module) -> None:
    """One step on ``loss`` with the gradient norm clipped to 1."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """EMA of the parameters, with a decay that ramps up over the first steps."""
    rate = 1 - min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, rate)


def file_logger(name: str, out: Path) -> logging.Logger:
    """A logger writing timestamped lines to ``out/train.log``."""
    log = logging.getLogger(f"cosmos_env.{name}.{out}")
    log.setLevel(logging.INFO)
    if not log.handlers:
        handler = logging.FileHandler(out / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log
