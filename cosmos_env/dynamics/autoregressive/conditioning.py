"""The state conditioning of the autoregressive transformer (models with a state track).

The task state of frame t (standardised) goes through an MLP and is added to every input of
frame t and to the action token that leads to it; where the state has keypoints, their
maps on the token grid are added slot by slot to the frame's token inputs. The
conditioning rides on inputs the sequence already has: state tokens of their own would
lengthen every pass, and AdaLN would need a per-position modulation across the interleaved
frames.
"""

from __future__ import annotations

import torch
from torch import nn


class StateConditioning(nn.Module):
    """Standardised states (B, F, S) and, with ``keypoints`` > 0, keypoint maps
    (B, F, P, h, w) in [0, 1] (P = ``keypoints``, h * w = ``tokens``) -> per-input
    conditioning (B, F, N+1, D): index 0 for the action token that leads to the frame,
    1..N for its N tokens."""

    def __init__(self, state_dim: int, keypoints: int, width: int, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.state = nn.Sequential(nn.Linear(state_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.keypoints = nn.Linear(keypoints, width) if keypoints else None

    def forward(self, states: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.state(states)[:, :, None]  # (B, F, 1, D)
        cond = cond.expand(-1, -1, self.tokens + 1, -1)
        if self.keypoints is None:
            return cond
        if maps is None:
            raise ValueError("this model reads keypoint maps; pass maps (B, F, P, h, w)")
        slots = self.keypoints(maps.flatten(3).transpose(2, 3).to(states.dtype))  # (B, F, N, D)
        return cond + torch.cat([torch.zeros_like(slots[:, :, :1]), slots], 2)
