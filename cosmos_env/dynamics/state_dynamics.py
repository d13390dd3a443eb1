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


def integrate_end_effector(
    states: torch.Tensor,
    actions: torch.Tensor,
    index: slice,
    action_low: torch.Tensor,
    action_high: torch.Tensor,
    state_min: torch.Tensor,
    state_max: torch.Tensor,
) -> torch.Tensor:
    """The change (B, S) in world units that end-effector position deltas make: states
    (B, S), actions (B, A) in [-1, 1] whose first three channels scale linearly onto
    ``[action_low, action_high]`` (metres). The end-effector position (state dims
    ``index``) moves by them, clipped to ``[state_min, state_max]`` (the training states'
    range: the workspace and the table the arm cannot pass); every other dim gets 0."""
    low, high = action_low[:3], action_high[:3]
    delta = low + (actions[:, :3].float() + 1) * 0.5 * (high - low)
    pos = states[:, index].float()
    moved = torch.minimum(torch.maximum(pos + delta, state_min[index]), state_max[index])
    change = torch.zeros(states.shape, dtype=torch.float32, device=states.device)
    change[:, index] = moved - pos
    return change


OFFSET_SCALE = 0.05  # metres: offsets of a few centimetres decide contact
MOTION_SCALE = 0.01  # metres per step: a pushed cube moves about a centimetre


def contact_feature_dim(slots: int, context: int) -> int:
    """Width of ``contact_features`` for ``slots`` 3-D slots and ``context`` frames."""
    return 3 * slots * (context + 1)


def contact_features(states: torch.Tensor, anchor: slice, slots: list[slice]) -> torch.Tensor:
    """World-unit context states (B, K, S), oldest first -> (B, 3P(K+1)): each of the P
    slots' offset from the ``anchor`` slot (the end effector) in every frame, in units of
    5 cm, and its change over the last step, in units of 1 cm/step."""
    states = states.float()
    offsets = [(states[..., s] - states[..., anchor]) / OFFSET_SCALE for s in slots]
    motion = [(states[:, -1, s] - states[:, -2, s]) / MOTION_SCALE for s in slots]
    if states.shape[1] < 2:
        motion = [torch.zeros_like(m) for m in motion]
    return torch.cat([torch.cat(offsets, -1).flatten(1), *motion], dim=1)


class StateDynamics(nn.Module):
    """Standardised states (B, K, S), oldest first, the actions after each (B, K, A) in
    [-1, 1] and optional extra features (B, E) -> the scaled change from the last state to
    the next one (B, S)."""

    def __init__(
        self, state_dim: int, action_dim: int, context: int, width: int, extra_dim: int = 0
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(context * (state_dim + action_dim) + extra_dim, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, state_dim),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        inputs = [states.flatten(1), actions.flatten(1)]
        return self.net(torch.cat(inputs if extra is None else [*inputs, extra], dim=1))
