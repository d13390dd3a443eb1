"""Object motion predicted in the gripper's frame.

Pushing a cube is the same physics wherever the cube stands on the table and whichever
way the gripper faces. A state MLP on world coordinates has to learn it again for every
place and direction, and the experts' data shows each direction pushed only towards its
zone; off those paths (a planner's, a cloned policy's) it guesses. This head sees the scene
only as the gripper does: every offset, motion and action is rotated into the frame of the
end effector's current yaw, so its inputs do not change when the scene is shifted on the
table or turned about the vertical. It predicts each object's planar motion in that frame,
and the caller rotates it back to the world.

With the same data, one-step cube errors while a cube is pushed fell by about a third
against the world-frame MLP (12.7 -> 9.2 mm under a cloned policy, 8.3 -> 5.4 mm under
the expert), and CEM plans imagined with the track succeeded in 80% of MuJoCo episodes
instead of 44% (``benchmarks/policy_eval.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from cosmos_env.data.state_spec import StateSpec
from cosmos_env.dynamics.state_dynamics import MOTION_SCALE, OFFSET_SCALE

SYMMETRY = 4  # a square footprint looks the same every quarter turn about the vertical


def yaw(quat: torch.Tensor) -> torch.Tensor:
    """Heading (...) in radians of unit quaternions (..., 4) ordered (w, x, y, z)."""
    w, x, y, z = quat.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def rotate_xy(vectors: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Planar vectors (..., 2) turned by ``angle`` (...) radians, counter-clockwise."""
    c, s = torch.cos(angle), torch.sin(angle)
    x, y = vectors[..., 0], vectors[..., 1]
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1)


class GripperFrameHead(nn.Module):
    """World-unit context states (B, K, S), oldest first, and the actions after each
    (B, K, A) in [-1, 1] -> the next planar motion (B, P, 2) in metres, world frame, of the
    P ``objects`` (names such as ``cube``: slots ``<name>_pos`` and ``<name>_quat``).

    Features, all in the frame of the end effector's yaw at the last context step: the
    offsets from the end effector of the ``neighbours`` (3-D position slot names) in every
    context frame, each object's yaw relative to the end effector's (as sine and cosine of
    ``SYMMETRY`` times it), the end effector's past yaws, the actions (their first two
    channels, planar deltas, rotated), and the last K-1 one-step motions of the end effector
    and of the objects.
    """

    def __init__(
        self,
        objects: list[str],
        neighbours: list[str],
        ee_pos: str,
        ee_quat: str,
        context: int,
        action_dim: int,
        width: int,
        spec: StateSpec,
    ) -> None:
        super().__init__()
        self.objects = [spec.position_slot(f"{name}_pos", "frame_objects") for name in objects]
        self.object_quats = [spec.slot(f"{name}_quat") for name in objects]
        self.neighbours = [spec.position_slot(name, "state_relative") for name in neighbours]
        self.ee, self.ee_quat = spec.position_slot(ee_pos, "ee_slot"), spec.slot(ee_quat)
        k, p = context, len(objects)
        inputs = 3 * k * len(self.neighbours) + 2 * k * p + 2 * k + k * action_dim
        inputs += (k - 1) * (2 + 3 * p)
        self.net = nn.Sequential(
            nn.Linear(inputs, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, 2 * p),
        )
        nn.init.zeros_(self.net[-1].weight)  # starts by predicting no motion
        nn.init.zeros_(self.net[-1].bias)

    def features(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B, F) rotation- and translation-invariant features of states (B, K, S) and
        actions (B, K, A); see the class docstring."""
        ee_yaws = yaw(states[..., self.ee_quat])  # (B, K)
        frame = -ee_yaws[:, -1:]  # turns world vectors into the current gripper frame
        ee = states[..., self.ee]
        parts = []
        for index in self.neighbours:
            offset = (states[..., index] - ee) / OFFSET_SCALE  # (B, K, 3)
            parts += [rotate_xy(offset[..., :2], frame).flatten(1), offset[..., 2]]
        for quat in self.object_quats:
            relative = SYMMETRY * (yaw(states[..., quat]) - ee_yaws)
            parts += [torch.sin(relative), torch.cos(relative)]
        parts += [torch.sin(ee_yaws + frame), torch.cos(ee_yaws + frame)]
        parts += [rotate_xy(actions[..., :2], frame).flatten(1), actions[..., 2:].flatten(1)]
        frame_steps = frame.expand(-1, states.shape[1] - 1)
        ee_motion = (ee[:, 1:, :2] - ee[:, :-1, :2]) / MOTION_SCALE
        parts.append(rotate_xy(ee_motion, frame_steps).flatten(1))
        for index in self.objects:
            motion = (states[:, 1:, index] - states[:, :-1, index]) / MOTION_SCALE  # (B, K-1, 3)
            parts += [rotate_xy(motion[..., :2], frame_steps).flatten(1), motion[..., 2]]
        return torch.cat(parts, dim=1)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        states, actions = states.float(), actions.float()
        frame_yaw = yaw(states[:, -1, self.ee_quat])  # (B,)
        motion = self.net(self.features(states, actions)).view(len(states), -1, 2)
        return rotate_xy(motion.float() * MOTION_SCALE, frame_yaw[:, None])  # (B, P, 2)
