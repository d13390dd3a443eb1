"""A scene's appearance is written into the compiled model in place, and restoring it
gives the compiled model back bit for bit."""

import mujoco
import numpy as np
import pytest

from cosmos_env.sim.scene import Scene, SceneRanges, default_scene, sample_scene
from cosmos_env.sim.scene_appearance import SceneAppearance, rotate_camera, turn_light
from cosmos_env.sim.tabletop_xml import tabletop_xml

FIELDS = ("geom_rgba", "geom_matid", "light_dir", "light_diffuse", "cam_pos", "cam_quat")
WIDE = SceneRanges(
    table={"hue": [0, 1]},
    floor={"hue": [0, 1]},
    objects={"colour": {}},
    light_yaw_deg=(-60, 60),
    light_pitch_deg=(-20, 15),
    light_intensity=(0.5, 1.5),
    ambient=(0.8, 1.2),
    camera_shift_m=(-0.02, 0.02),
    camera_rotate_deg=(-3, 3),
)


def _snapshot(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    arrays = {name: getattr(model, name).copy() for name in FIELDS}
    arrays["headlight"] = np.r_[model.vis.headlight.ambient, model.vis.headlight.diffuse]
    return arrays


@pytest.fixture
def model():
    return mujoco.MjModel.from_xml_string(tabletop_xml(2, 64))


def test_todays_scene_and_restore_leave_the_compiled_model_bit_for_bit(model):
    compiled = _snapshot(model)
    appearance = SceneAppearance(model, ("cube", "cylinder"))
    appearance.apply(default_scene(2))
    for name, value in _snapshot(model).items():
        np.testing.assert_array_equal(value, compiled[name], err_msg=name)
    appearance.apply(sample_scene(np.random.default_rng(0), WIDE))
    assert not np.array_equal(model.cam_pos, compiled["cam_pos"])
    appearance.apply(default_scene(2))
    for name, value in _snapshot(model).items():
        np.testing.assert_array_equal(value, compiled[name], err_msg=name)


def test_a_scene_lands_in_the_model(model):
    compiled = _snapshot(model)
    scene = sample_scene(np.random.default_rng(1), WIDE)
    SceneAppearance(model, ("cube", "cylinder")).apply(scene)
    cube, table, floor = (
        model.body("cube").geomadr[0],
        model.geom("table").id,
        model.geom("floor").id,
    )
    np.testing.assert_allclose(model.geom_rgba[cube], scene.objects[0].rgba, rtol=1e-6)
    assert model.geom_matid[table] == -1  # a plain colour instead of the wood texture
    np.testing.assert_allclose(model.geom_rgba[table], scene.table_rgba, rtol=1e-6)
    np.testing.assert_allclose(model.geom_rgba[floor], scene.floor_rgba, rtol=1e-6)
    np.testing.assert_allclose(
        model.light_diffuse[0], compiled["light_diffuse"][0] * scene.light_intensity
    )
    np.testing.assert_allclose(
        model.vis.headlight.ambient, compiled["headlight"][:3] * scene.ambient, rtol=1e-6
    )
    front = model.camera("front").id
    np.testing.assert_allclose(
        model.cam_pos[front] - compiled["cam_pos"][front], scene.camera_shift_m, atol=1e-12
    )
    # the camera turned by at most the drawn angles (about 3 degrees per axis)
    cos_half = abs(model.cam_quat[front] @ compiled["cam_quat"][front])
    angle = np.rad2deg(2 * np.arccos(min(cos_half, 1.0)))
    assert 0 < angle <= np.abs(scene.camera_rotate_deg).sum() + 1e-6


def test_a_jittered_camera_moves_the_projection_a_little(model):
    data = mujoco.MjData(model)
    from cosmos_env.sim.camera import camera_projection, project

    mujoco.mj_forward(model, data)
    nominal = camera_projection(model, data, "front")
    scene = Scene(
        default_scene(2).objects, camera_shift_m=(0.02, 0, 0), camera_rotate_deg=(0, 3, 0)
    )
    SceneAppearance(model, ("cube", "cylinder")).apply(scene)
    mujoco.mj_forward(model, data)
    jittered = camera_projection(model, data, "front")
    centre = np.array([0.0, 0.05, 0.0])  # the table's centre
    moved = np.abs(project(jittered, centre) - project(nominal, centre))
    assert 0.02 < moved.max() < 0.3  # normalised image units: a few pixels of 64


def test_light_turns_and_stays_above_the_table():
    d = np.array([-0.3, 0.3, -1.0])
    np.testing.assert_allclose(turn_light(d, 0, 0), d / np.linalg.norm(d))
    turned = turn_light(d, 90, 0)
    assert turned[2] == pytest.approx(d[2] / np.linalg.norm(d))  # same elevation
    np.testing.assert_allclose(turned[:2] @ d[:2], 0, atol=1e-12)  # a quarter turn round
    low = turn_light(d, 0, -80)
    assert np.rad2deg(np.arcsin(-low[2])) == pytest.approx(5.0)
    np.testing.assert_allclose(np.linalg.norm(low), 1.0)


def test_camera_rotation_about_its_own_axes():
    q = np.array([0.92251672, 0.38595713, 0.0, 0.0])
    np.testing.assert_allclose(rotate_camera(q, (0, 0, 0)), q)
    turned = rotate_camera(q, (0, 0, 10))  # roll about the viewing axis
    assert np.rad2deg(2 * np.arccos(abs(turned @ q))) == pytest.approx(10.0)
