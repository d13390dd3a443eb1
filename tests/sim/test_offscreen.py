"""The swappable offscreen renderer gives mujoco.Renderer's pixels, also after its model
is swapped for a recompiled one with other objects."""

import mujoco
import numpy as np
import pytest

import cosmos_env  # noqa: F401  (MUJOCO_GL=egl)
from cosmos_env.sim.offscreen import OffscreenRenderer, asset_key
from cosmos_env.sim.scene import SceneRanges, sample_scene
from cosmos_env.sim.tabletop_xml import tabletop_xml


def _model_and_data(xml: str) -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def _reference(model: mujoco.MjModel, data: mujoco.MjData, camera: str) -> np.ndarray:
    with mujoco.Renderer(model, 64, 64) as renderer:
        renderer.update_scene(data, camera=camera)
        return renderer.render()


def _other_objects() -> str:
    ranges = SceneRanges(count=(3, 3), objects={"shapes": ["sphere", "capsule"]})
    scene = sample_scene(np.random.default_rng(0), ranges)
    return tabletop_xml(3, 64, objects=scene.objects)


def test_same_pixels_as_mujoco_renderer_before_and_after_a_swap():
    first, first_data = _model_and_data(tabletop_xml(2, 64))
    second, second_data = _model_and_data(_other_objects())
    assert asset_key(first) == asset_key(second)  # the context is kept
    renderer = OffscreenRenderer(first, 64, 64)
    try:
        for camera in ("front", "wrist"):
            frame = renderer.render(first_data, camera)
            assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
            np.testing.assert_array_equal(frame, _reference(first, first_data, camera))
        renderer.set_model(second)
        frame = renderer.render(second_data, "front")
        np.testing.assert_array_equal(frame, _reference(second, second_data, "front"))
        assert not np.array_equal(frame, _reference(first, first_data, "front"))
    finally:
        renderer.close()
    with pytest.raises(RuntimeError, match="after close"):
        renderer.render(second_data, "front")


def test_other_assets_get_their_own_context():
    wood, wood_data = _model_and_data(tabletop_xml(2, 64))
    xml = tabletop_xml(2, 64).replace('rgb1="0.72 0.58 0.42"', 'rgb1="0.2 0.6 0.3"')
    green, green_data = _model_and_data(xml)
    assert asset_key(green) != asset_key(wood)
    renderer = OffscreenRenderer(wood, 64, 64)
    try:
        renderer.set_model(green)
        np.testing.assert_array_equal(
            renderer.render(green_data, "front"), _reference(green, green_data, "front")
        )
    finally:
        renderer.close()


def test_frames_larger_than_the_offscreen_buffer_are_refused():
    model, _ = _model_and_data(tabletop_xml(2, 32))
    with pytest.raises(ValueError, match="exceed the model's offscreen buffer 32x32"):
        OffscreenRenderer(model, 64, 64)
