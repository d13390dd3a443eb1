"""State dynamics: the next task state from the context's states and actions.

A small MLP in standardised units predicts the change of every state dimension, scaled
by that dimension's typical one-step change, so slow and fast dimensions weigh alike in
the loss. The world model rolls this track forward beside its latents and conditions
frame generation on it: the state of a gripper moved by end-effector deltas is easy to
predict exactly, while reading it back from the model's own blurred frames is not.
"""

from __future__ import annotations

import torch
from torch import nn


class StateDynamics(nn.Module):
    """Standardised states (B, K, S), oldest first, and the actions after each (B, K, A) in
    [-1, 1] -> the scaled change from the last state to the next one (B, S)."""

    def __init__(self, state_dim: int, action_dim: int, context: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(context * (state_dim + action_dim), width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, state_dim),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([states.flatten(1), actions.flatten(1)], dim=1))
