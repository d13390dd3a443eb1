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


def rendered_projection(env) -> np.ndarray | None:
    """The (3, 4) projection (as `camera_projection`'s) of the view a Gymnasium MuJoCo env
    made with ``render_mode="rgb_array"`` renders, or None when that view moves with the
    scene (a model camera that tracks, or one on a moving body; Gymnasium renders every
    other view through a free camera, which stays put). Renders one frame to read it."""
    env.render()
    u = env.unwrapped
    viewer = u.mujoco_renderer._get_viewer("rgb_array")
    cam, model = viewer.cam, u.model
    if cam.type == mujoco.mjtCamera.mjCAMERA_FIXED:
        fixed = model.cam_mode[cam.fixedcamid] == mujoco.mjtCamLight.mjCAMLIGHT_FIXED
        if not fixed or model.body_weldid[model.cam_bodyid[cam.fixedcamid]] != 0:
            return None
    # Mono rendering looks through the average of the two eyes' GL cameras.
    left, right_eye = viewer.scn.camera[0], viewer.scn.camera[1]
    pos = (np.asarray(left.pos) + np.asarray(right_eye.pos)) / 2
    forward, up = np.asarray(left.forward, np.float64), np.asarray(left.up, np.float64)
    right = np.cross(forward, up)
    half_height = (left.frustum_top - left.frustum_bottom) / 2 / left.frustum_near
    aspect = viewer.viewport.width / viewer.viewport.height
    half_width = (
        left.frustum_width / left.frustum_near if left.frustum_width > 0 else half_height * aspect
    )
    rows = np.stack([right / half_width, -up / half_height, forward])  # v runs down the rows
    return np.concatenate([rows, -(rows @ pos)[:, None]], axis=1)
