"""An offscreen RGB renderer whose model can be swapped: ``mujoco.Renderer``'s calls (the
same pixels), but a recompiled model keeps the GL context and, when its assets are the
same, the uploaded textures, materials and meshes. A new ``mujoco.Renderer`` makes a GL
context and compiles its shaders again, which on llvmpipe costs as much as rendering most
of an episode; a swap costs a scene update."""

from __future__ import annotations

import hashlib

import mujoco
import numpy as np
from mujoco.gl_context import GLContext  # the MUJOCO_GL backend (EGL here)

MAX_GEOM = 10_000  # as mujoco.Renderer


class _OwnedGLContext(GLContext):
    """A GL context freed by its renderer only (after the MjrContext), never by the GC."""

    def __del__(self) -> None:
        pass


def asset_key(model: mujoco.MjModel) -> str:
    """A digest of what ``MjrContext`` uploads from ``model`` (textures, material texture
    bindings, meshes, height fields, skins, plane geoms, the offscreen buffer): two models
    with one key render through one context. Fog and shadow ranges are not part of it (the
    scenes rendered here have neither)."""
    digest = hashlib.sha256()
    planes = np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE)
    parts = (
        model.tex_data,
        model.tex_width,
        model.tex_height,
        model.tex_type,
        model.mat_texid,
        model.mat_texuniform,
        model.mat_texrepeat,
        model.mesh_vert,
        model.mesh_face,
        model.hfield_data,
        planes,
        model.geom_size[planes],
        np.array([model.nskin, model.nflex, model.vis.quality.shadowsize]),
        np.array([model.vis.global_.offwidth, model.vis.global_.offheight]),
        np.array([model.vis.quality.offsamples]),
    )
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


class OffscreenRenderer:
    """RGB frames uint8 (height, width, 3) of a model's cameras from the offscreen buffer.

    Args:
        model: the model to render; `set_model` swaps it for another.
        height, width: frame size in pixels, at most the model's offscreen buffer.
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        self._height, self._width = height, width
        self._gl = _OwnedGLContext(width, height)
        self._gl.make_current()
        self._context: mujoco.MjrContext | None = None
        self._key = ""
        self._scene_key: tuple[int, int] = (-1, -1)
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self.set_model(model)

    def set_model(self, model: mujoco.MjModel) -> None:
        """Render ``model`` from now on; its assets are uploaded only if they differ."""
        buffer = (model.vis.global_.offwidth, model.vis.global_.offheight)
        if self._width > buffer[0] or self._height > buffer[1]:
            raise ValueError(
                f"frames of {self._width}x{self._height} exceed the model's offscreen buffer "
                f"{buffer[0]}x{buffer[1]}; raise <visual><global offwidth/offheight>"
            )
        self._gl.make_current()
        key = asset_key(model)
        if self._context is None or key != self._key:
            self._free_context()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
            self._key = key
        if (model.nskin, model.nflex) != self._scene_key:  # what MjvScene sizes from the model
            self._scene = mujoco.MjvScene(model, MAX_GEOM)
            self._scene_key = (model.nskin, model.nflex)
        self._model = model

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """The frame of the named fixed ``camera`` in the state ``data`` holds."""
        if self._context is None:
            raise RuntimeError("render() called after close()")
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = self._model.camera(camera).id
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self._model,
            data,
            self._option,
            None,
            cam,
            mujoco.mjtCatBit.mjCAT_ALL.value,
            self._scene,
        )
        mujoco.mjr_render(self._rect, self._scene, self._context)
        frame = np.empty((self._height, self._width, 3), np.uint8)
        mujoco.mjr_readPixels(frame, None, self._rect, self._context)
        return np.ascontiguousarray(np.flipud(frame))  # GL rows run bottom-up

    def _free_context(self) -> None:
        if self._context is not None:
            with self._gl.as_current():  # a no-op once EGL has shut down at exit
                self._context.free()
            self._context = None

    def close(self) -> None:
        self._free_context()
        if self._gl is not None:
            self._gl.free()
            self._gl = None

    def __del__(self) -> None:  # the MjrContext goes before its GL context
        if hasattr(self, "_gl"):
            self.close()
