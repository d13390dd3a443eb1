"""Learned reward, termination and success of a transition, for worlds that do not define
them as functions of the state (a store without a simulator, a Gymnasium env whose reward
needs more than its state), as DIAMOND's and IRIS's reward/end heads do.

The heads read the standardised state before and after a step and the action between, so
a reward with an action cost (Gymnasium's ``ctrl_cost``) is learnable too; they are trained
on the store's ``reward``, ``is_terminal`` and ``is_success`` columns of the row arrived at.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Which output of the heads is which: reward (standardised), terminal and success logits.
OUTCOMES = ("reward", "is_terminal", "is_success")


class OutcomeHeads(nn.Module):
    """Standardised states (B, S) before and after a step and its action (B, A) in [-1, 1]
    -> reward (B,) in the store's units and the probabilities (B,) in [0, 1] that the
    episode terminates and that the task is solved on arrival."""

    def __init__(self, state_dim: int, action_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * state_dim + action_dim, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, len(OUTCOMES)),
        )
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    def set_normalisation(self, rewards: torch.Tensor) -> None:
        """Reward stats from the training rows' rewards (N,)."""
        self.reward_mean.copy_(rewards.float().mean())
        self.reward_std.copy_(rewards.float().std().clamp_min(1e-6))

    def _logits(self, before: torch.Tensor, action: torch.Tensor, after: torch.Tensor):
        return self.net(torch.cat([before, action, after], dim=1).float())  # (B, 3)

    def loss(
        self,
        before: torch.Tensor,
        action: torch.Tensor,
        after: torch.Tensor,
        targets: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Squared error of the standardised reward plus the binary cross-entropy of the
        flags; ``targets`` maps each of ``OUTCOMES`` to (B,) float values (flags 0/1)."""
        out = self._logits(before, action, after)
        reward = (targets["reward"].float() - self.reward_mean) / self.reward_std
        loss = (out[:, 0] - reward).pow(2).mean()
        for i, key in enumerate(OUTCOMES[1:], start=1):
            loss = loss + F.binary_cross_entropy_with_logits(out[:, i], targets[key].float())
        return loss

    def forward(
        self, before: torch.Tensor, action: torch.Tensor, after: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out = self._logits(before, action, after)
        return {
            "reward": out[:, 0] * self.reward_std + self.reward_mean,
            "is_terminal": torch.sigmoid(out[:, 1]),
            "is_success": torch.sigmoid(out[:, 2]),
        }
