"""Pinhole projection of a MuJoCo camera: world points to normalised image coordinates,
so a model can be told where in the frame a known 3-D position appears."""

from __future__ import annotations

import mujoco
import numpy as np


def camera_projection(model: mujoco.MjModel, data: mujoco.MjData, camera: str) -> np.ndarray:
    """(3, 4) matrix P: for a world point p, ``P @ [p, 1]`` = (u w, v w, w) with u, v in
    [-1, 1] across the square image (u left to right, v top to bottom) and w the depth in
    front of the camera. Needs ``mj_forward`` to have run (camera poses)."""
    cam = model.camera(camera).id
    rot = data.cam_xmat[cam].reshape(3, 3)  # columns: the camera's x (right), y (up), z (back)
    extrinsic = np.concatenate([rot.T, -(rot.T @ data.cam_xpos[cam])[:, None]], axis=1)
    focal = 1.0 / np.tan(np.deg2rad(model.cam_fovy[cam]) / 2)
    # MuJoCo cameras look along -z and have y up; image rows run down.
    intrinsic = np.diag([focal, -focal, -1.0])
    return intrinsic @ extrinsic


def project(projection: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World points (..., 3) -> normalised image coordinates (..., 2) (u right, v down)."""
    homogeneous = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)
    uvw = homogeneous @ projection.T
    return uvw[..., :2] / np.maximum(uvw[..., 2:], 1e-3)
