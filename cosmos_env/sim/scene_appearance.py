"""Apply a `Scene`'s appearance to a compiled tabletop model in place: object, table and
floor colours, the light and the front camera's pose. Geometry (shape kinds, sizes, the
object count) is compiled into the model instead (``tabletop_xml``), because MuJoCo
derives mass properties, bounding volumes and constraint scalings from it."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from cosmos_env.sim.scene import Scene

_SAVED = ("geom_rgba", "geom_matid", "light_dir", "light_diffuse", "cam_pos", "cam_quat")
MIN_LIGHT_ELEVATION = np.deg2rad(5.0)  # the light stays above the table


def turn_light(direction: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """A light direction (3,) turned by ``yaw_deg`` about the vertical and raised by
    ``pitch_deg`` (elevation below the horizon kept in [5, 90] degrees); unit length."""
    x, y, z = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    azimuth = np.arctan2(y, x) + np.deg2rad(yaw_deg)
    elevation = np.arctan2(-z, np.hypot(x, y)) + np.deg2rad(pitch_deg)
    elevation = np.clip(elevation, MIN_LIGHT_ELEVATION, np.pi / 2)
    c = np.cos(elevation)
    return np.array([c * np.cos(azimuth), c * np.sin(azimuth), -np.sin(elevation)])


def rotate_camera(quat: np.ndarray, rotate_deg: Sequence[float]) -> np.ndarray:
    """A camera orientation (w, x, y, z) rotated by ``rotate_deg`` about its own x, y, z."""
    offset = np.zeros(4)
    mujoco.mju_euler2Quat(offset, np.deg2rad(np.asarray(rotate_deg, np.float64)), "xyz")
    turned = np.zeros(4)
    mujoco.mju_mulQuat(turned, np.asarray(quat, np.float64), offset)
    return turned


class SceneAppearance:
    """The appearance fields of ``model`` as compiled, and `apply` to write a scene's.

    ``apply`` first restores the compiled values, so a scene with no colour, zero offsets
    and unit intensities leaves the model exactly as compiled (bit for bit).

    Args:
        model: a compiled tabletop model (``tabletop_xml``): geoms ``table`` and ``floor``,
            one directional light, camera ``front`` and one geom per object body.
        slots: the object bodies, in the order of the scene's objects.
        camera: the camera whose pose the scene jitters.
    """

    def __init__(self, model: mujoco.MjModel, slots: Sequence[str], camera: str = "front"):
        self.model = model
        self._object_geoms = [int(model.body(name).geomadr[0]) for name in slots]
        self._table = model.geom("table").id
        self._floor = model.geom("floor").id
        self._camera = model.camera(camera).id
        self._saved = {name: getattr(model, name).copy() for name in _SAVED}
        headlight = model.vis.headlight
        self._headlight = (headlight.ambient.copy(), headlight.diffuse.copy())

    def restore(self) -> None:
        """Every appearance field back to its compiled value."""
        for name, value in self._saved.items():
            getattr(self.model, name)[:] = value
        self.model.vis.headlight.ambient[:] = self._headlight[0]
        self.model.vis.headlight.diffuse[:] = self._headlight[1]

    def apply(self, scene: Scene) -> None:
        """Write ``scene``'s colours, light and camera pose into the model (after
        `restore`); ``mj_forward`` then moves the camera."""
        self.restore()
        m = self.model
        for geom, look in zip(self._object_geoms, scene.objects, strict=True):
            if look.rgba is not None:
                m.geom_rgba[geom] = look.rgba
        if scene.table_rgba is not None:  # a plain colour instead of the wood material
            m.geom_matid[self._table] = -1
            m.geom_rgba[self._table] = scene.table_rgba
        if scene.floor_rgba is not None:
            m.geom_rgba[self._floor] = scene.floor_rgba
        if scene.light_yaw_deg or scene.light_pitch_deg:
            m.light_dir[0] = turn_light(m.light_dir[0], scene.light_yaw_deg, scene.light_pitch_deg)
        if scene.light_intensity != 1.0:
            m.light_diffuse[0] *= scene.light_intensity
        if scene.ambient != 1.0:
            m.vis.headlight.ambient[:] *= scene.ambient
            m.vis.headlight.diffuse[:] *= scene.ambient
        if any(scene.camera_shift_m):
            m.cam_pos[self._camera] += scene.camera_shift_m
        if any(scene.camera_rotate_deg):
            m.cam_quat[self._camera] = rotate_camera(
                m.cam_quat[self._camera], scene.camera_rotate_deg
            )
