"""Action conditioning shared by the diffusion and autoregressive dynamics.

As in Cosmos-Predict1's action-conditioned model, two MLPs read the same actions: one
output is added to the noise-level (timestep) embedding, the other to the AdaLN
modulation term, so actions steer both what the blocks see and how they are normalised.
"""

from __future__ import annotations

import torch
from torch import nn


class ActionEmbedding(nn.Module):
    """Actions (B, K, A) in [-1, 1] -> (to the time embedding (B, D), to AdaLN (B, M)).

    ``mask`` (B,) bool, False where the action is dropped (classifier-free guidance):
    a dropped action contributes zeros, the "no action" condition. An action-free model
    (``action_dim`` 0: a pre-trained base) has no parameters here and always contributes
    zeros, so post-training can add an embedding that starts as "no action"
    (`zero_outputs`).
    """

    def __init__(self, action_dim: int, context: int, width: int, adaln_dim: int) -> None:
        super().__init__()
        flat = action_dim * context
        self.width, self.adaln_dim = width, adaln_dim
        self.to_time = self.to_adaln = None
        if flat:
            self.to_time = nn.Sequential(nn.Linear(flat, width), nn.SiLU(), nn.Linear(width, width))
            self.to_adaln = nn.Sequential(
                nn.Linear(flat, width), nn.SiLU(), nn.Linear(width, adaln_dim)
            )

    def zero_outputs(self) -> None:
        """Zero both output layers: the embedding contributes nothing until trained, so a
        model that gains it behaves exactly as before (post-training a base)."""
        for mlp in (self.to_time, self.to_adaln):
            if mlp is not None:
                nn.init.zeros_(mlp[-1].weight)
                nn.init.zeros_(mlp[-1].bias)

    def forward(
        self, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = actions.flatten(1)  # (B, K*A)
        if self.to_time is None:  # action-free
            zeros = flat.new_zeros(len(flat), self.width)
            return zeros, flat.new_zeros(len(flat), self.adaln_dim)
        to_time, to_adaln = self.to_time(flat), self.to_adaln(flat)
        if mask is not None:
            keep = mask.to(flat.dtype)[:, None]
            to_time, to_adaln = to_time * keep, to_adaln * keep
        return to_time, to_adaln
