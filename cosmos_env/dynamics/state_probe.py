"""State probe: the world's task state (gripper and object poses, gripper opening, zone
and bowl positions) read from one latent frame, so the world-model env can score rewards
and success with the same task functions as the MuJoCo env."""

from __future__ import annotations

import torch
from torch import nn


class StateProbe(nn.Module):
    """Standardised latent (B, C, h, w) -> standardised state (B, S).

    The caller (``LatentDynamics``) owns the standardisation of both sides.
    """

    def __init__(self, latent_channels: int, latent_size: int, state_dim: int, width: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(latent_channels, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),  # (B, W, h/2, w/2)
            nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),  # (B, W, h/4, w/4)
            nn.GELU(),
        )
        cells = (-(-latent_size // 4)) ** 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * cells, 2 * width),
            nn.GELU(),
            nn.Linear(2 * width, state_dim),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(latent))
