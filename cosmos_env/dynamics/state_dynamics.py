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

from cosmos_env.sim import state_layout as sl


def end_effector_slot(name: str) -> slice:
    """The state dims of the 3-D position slot ``name`` (e.g. ``gripper_pos``)."""
    index = sl.slot(name)
    if index.stop - index.start != 3:
        raise ValueError(f"ee_slot must name a 3-D position slot, got {name!r}")
    return index


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
