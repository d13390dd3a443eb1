"""Scene ranges and sampling: the defaults draw today's scene without touching the rng,
draws are deterministic and stay inside their ranges, bad ranges fail with the key's
name, and the held-out config shows a task object that pre-training never does."""

import colorsys

import numpy as np
import pytest

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.sim.scene import (
    SCALE_LIMITS,
    SHAPE_SIZES,
    SLOT_DEFAULTS,
    ColourRange,
    ObjectRanges,
    SceneRanges,
    can_produce,
    default_scene,
    sample_scene,
)


def _ranges(world: str, *overrides: str) -> SceneRanges:
    cfg = load_config("generate", GenerateConfig, [f"world={world}", *overrides])
    return SceneRanges.from_dict(cfg.world.scene)


def test_default_ranges_draw_todays_scene_and_nothing_from_the_rng():
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    scene = sample_scene(rng, SceneRanges(), n_objects=3)
    assert rng.bit_generator.state == before
    assert scene == default_scene(3)
    assert [o.shape for o in scene.objects] == ["box", "cylinder", "box"]
    assert scene.slots == ("cube", "cylinder", "block")
    assert _ranges("tabletop").is_default  # the shipped default config


def test_same_seed_same_scene_other_seed_other_scene():
    ranges = _ranges("tabletop_random")
    a = sample_scene(np.random.default_rng(7), ranges)
    assert a == sample_scene(np.random.default_rng(7), ranges)
    assert a != sample_scene(np.random.default_rng(8), ranges)


def test_draws_stay_inside_the_ranges():
    ranges = _ranges("tabletop_random")
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, ranges) for _ in range(400)]
    counts = {len(s.objects) for s in scenes}
    assert counts == {1, 2, 3}
    shapes = {o.shape for s in scenes for o in s.objects}
    assert shapes == set(ranges.objects.shapes)
    for s in scenes:
        for look in s.objects:
            assert SCALE_LIMITS[0] <= ranges.objects.scale[0] <= look.scale
            assert look.scale <= ranges.objects.scale[1] <= SCALE_LIMITS[1]
            assert look.size == SHAPE_SIZES[look.shape]
            h, sat, val = colorsys.rgb_to_hsv(*look.rgba[:3])
            assert 0.0 <= h <= 0.7 + 1e-9 and 0.45 - 1e-9 <= sat <= 0.9 + 1e-9
            assert 0.45 - 1e-9 <= val <= 0.95 + 1e-9
        for value, (lo, hi) in [
            (s.light_yaw_deg, ranges.light_yaw_deg),
            (s.light_pitch_deg, ranges.light_pitch_deg),
            (s.light_intensity, ranges.light_intensity),
            (s.ambient, ranges.ambient),
            *((v, ranges.camera_shift_m) for v in s.camera_shift_m),
            *((v, ranges.camera_rotate_deg) for v in s.camera_rotate_deg),
        ]:
            assert lo <= value <= hi
        assert s.table_rgba is not None and s.floor_rgba is not None


def test_widening_one_range_keeps_the_other_draws_of_a_seed():
    narrow = SceneRanges(light_intensity=(0.5, 1.5))
    wide = SceneRanges(light_intensity=(0.5, 1.5), camera_shift_m=(-0.02, 0.02))
    a = sample_scene(np.random.default_rng(1), narrow)
    b = sample_scene(np.random.default_rng(1), wide)
    assert a.light_intensity == b.light_intensity and a.objects == b.objects
    assert a.camera_shift_m == (0.0, 0.0, 0.0) != b.camera_shift_m


def test_own_shapes_keep_todays_size_colour_and_contact():
    scene = sample_scene(np.random.default_rng(0), SceneRanges(light_intensity=(0.5, 1.5)), 3)
    assert scene.objects == default_scene(3).objects  # only the light is drawn
    recoloured = SceneRanges(objects=ObjectRanges(colour=ColourRange()))
    look = sample_scene(np.random.default_rng(0), recoloured).objects[1]
    own = SLOT_DEFAULTS["cylinder"]
    assert (look.shape, look.size, look.condim) == (own.shape, own.size, own.condim)
    assert look.rgba != own.rgba


def test_ranges_round_trip_through_plain_data():
    ranges = _ranges("tabletop_heldout")
    data = ranges.to_dict()
    assert SceneRanges.from_dict(data) == ranges
    assert data["task_object"]["shapes"] == ["capsule"] and data["count"] == [1, 3]
    assert SceneRanges.from_dict(None) == SceneRanges.from_dict({}) == SceneRanges()


def test_the_held_out_task_object_is_never_drawn_in_pre_training():
    pretrain, held_out = _ranges("tabletop_random"), _ranges("tabletop_heldout")
    assert not can_produce(pretrain, held_out.task_object)
    assert not set(held_out.task_object.shapes) & set(pretrain.objects.shapes)
    assert not held_out.task_object.colour.intersects(pretrain.objects.colour)
    assert held_out.objects == pretrain.objects  # the distractors are pre-training's
    assert can_produce(pretrain, pretrain.objects)  # the check can say yes
    assert can_produce(
        SceneRanges(), ObjectRanges(("box",), ColourRange.of_rgba((0.85, 0.15, 0.12)))
    )
    cubes = [sample_scene(np.random.default_rng(i), held_out).objects[0] for i in range(50)]
    assert {c.shape for c in cubes} == {"capsule"}
    assert all(0.75 <= colorsys.rgb_to_hsv(*c.rgba[:3])[0] <= 0.95 for c in cubes)


@pytest.mark.parametrize(
    "scene, message",
    [
        ({"light_intensity": [2.0, 1.0]}, r"scene\.light_intensity: low 2 > high 1"),
        ({"objects": {"shapes": ["cone"]}}, r"scene\.objects\.shapes: unknown shape kind 'cone'"),
        ({"objects": {"shapes": "box"}}, r"scene\.objects\.shapes: give a list"),
        ({"count": [0, 3]}, r"scene\.count: objects per episode must be whole numbers in 1\.\.3"),
        ({"count": [1, 4]}, r"scene\.count: .* 1\.\.3, got \[1, 4\]"),
        ({"objects": {"scale": [0.5, 1.0]}}, r"scene\.objects\.scale: \[0\.5, 1\] must lie within"),
        ({"table": {"hue": [0.2, 1.5]}}, r"scene\.table\.hue: .* within \[0, 1\]"),
        ({"camera_shift_m": [-0.2, 0.2]}, r"scene\.camera_shift_m: .* within \[-0\.05, 0\.05\]"),
        ({"camera_shift_m": 0.02}, r"scene\.camera_shift_m: give a range \[low, high\]"),
        ({"colour": {}}, r"scene: unknown key 'colour'; known keys: \['count', 'objects'"),
        ({"objects": {"color": {}}}, r"scene\.objects: unknown key 'color'"),
    ],
)
def test_bad_ranges_name_the_key(scene, message):
    with pytest.raises(ValueError, match=message):
        SceneRanges.from_dict(scene)


def test_a_bad_override_of_the_composed_config_fails_when_the_world_is_built():
    from cosmos_env.sim.worlds import build_world

    cfg = load_config(
        "generate", GenerateConfig, ["world=tabletop_random", "world.scene.ambient=[1.5,0.5]"]
    )
    with pytest.raises(ValueError, match=r"scene\.ambient: low 1\.5 > high 0\.5"):
        build_world(cfg)
