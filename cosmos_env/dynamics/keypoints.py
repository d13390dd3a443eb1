"""Keypoint maps: where known 3-D points of the task state (the gripper, the cube) appear
on the latent grid, drawn as Gaussian blobs through the camera's projection.

The state track knows where the gripper and the cube are; told only as a vector (AdaLN),
the denoiser has to learn the camera itself to draw them in the right place. A blob per
point and frame on the token grid says it spatially, to sub-token precision.
"""

from __future__ import annotations

import torch


def project(projection: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """World points (..., 3) through a (3, 4) projection -> (..., 2) image coordinates in
    [-1, 1] (u right, v down; a StateSpec camera)."""
    uvw = points @ projection[:, :3].T + projection[:, 3]
    return uvw[..., :2] / uvw[..., 2:].clamp_min(1e-3)


def keypoint_maps(
    states: torch.Tensor, projection: torch.Tensor, slots: list[slice], side: int, sigma: float
) -> torch.Tensor:
    """Task states (B, F, S) in world units -> maps (B, F * P, side, side) in [0, 1], one
    Gaussian blob (std ``sigma`` tokens) per frame and per 3-D position slot (state dims
    ``slots``, from the StateSpec)."""
    points = torch.stack([states[..., index] for index in slots], dim=2)  # (B, F, P, 3)
    uv = project(projection, points.float())  # (B, F, P, 2)
    centres = (torch.arange(side, dtype=torch.float32) * 2 + 1) / side - 1  # token centres
    width = sigma * 2 / side
    du = (centres - uv[..., :1]) / width  # (B, F, P, side) along columns
    dv = (centres - uv[..., 1:]) / width  # along rows
    maps = torch.exp(-0.5 * (dv[..., :, None] ** 2 + du[..., None, :] ** 2))
    return maps.flatten(1, 2)  # (B, F * P, side, side)
