import gymnasium as gym
import pytest

import cosmos_env  # noqa: F401  (registers the tabletop ids)
from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data import EpisodeStore
from cosmos_env.generate import generate
from cosmos_env.sim.object_names import SHAPE_NOUNS, colour_name, object_phrase
from cosmos_env.sim.scene import SLOT_DEFAULTS, ObjectLook


@pytest.mark.parametrize(
    "rgba, name",
    [
        ((0.85, 0.15, 0.12), "red"),
        ((0.15, 0.3, 0.85), "blue"),
        ((0.2, 0.8, 0.3), "green"),
        ((0.9, 0.85, 0.2), "yellow"),
        ((0.8, 0.2, 0.7), "magenta"),
        ((0.5, 0.5, 0.52), "grey"),
        ((0.95, 0.95, 0.93), "white"),
        ((0.05, 0.04, 0.06), "black"),
    ],
)
def test_colour_names(rgba, name):
    assert colour_name(rgba) == name


def test_object_phrases_name_colour_and_shape():
    assert object_phrase(SLOT_DEFAULTS["cube"]) == "red cube"
    assert object_phrase(ObjectLook("sphere", (0.02,), rgba=(0.1, 0.2, 0.9, 1))) == "blue ball"
    assert set(SHAPE_NOUNS) == {"box", "cylinder", "sphere", "capsule", "ellipsoid"}
    with pytest.raises(ValueError, match="rgba"):
        object_phrase(ObjectLook("box", (0.02,) * 3))


def test_a_randomised_scene_names_its_task_object_in_the_instruction():
    fixed = gym.make("cosmos_env/Tabletop-Push-v0", image_size=32)
    fixed.reset(seed=0)
    assert fixed.unwrapped.instruction == "push the red cube into the green zone"
    fixed.close()
    scene = load_config("generate", GenerateConfig, ["world=tabletop_heldout"]).world.scene
    env = gym.make("cosmos_env/Tabletop-PickPlace-v0", image_size=32, scene=scene)
    env.reset(seed=3)
    look = env.unwrapped.world.scene.objects[0]
    assert env.unwrapped.instruction == f"put the {object_phrase(look)} in the yellow bowl"
    assert "capsule" in env.unwrapped.instruction  # the held-out shape
    env.close()


def test_generate_stores_each_episodes_own_instruction(tmp_path):
    args = [f"out={tmp_path / 's.zarr'}", "world=tabletop_random", "episodes=4", "workers=1"]
    generate(load_config("generate", GenerateConfig, [*args, "max_steps=2"]))
    store = EpisodeStore.open(tmp_path / "s.zarr")
    instructions = [store.instruction(i) for i in range(4)]
    assert all(
        i.startswith("push the ") and i.endswith(" into the green zone") for i in instructions
    )
    assert len(set(instructions)) > 1  # the drawn objects differ


def test_an_elongated_box_is_a_block_not_a_cube():
    from cosmos_env.sim.scene import SLOT_DEFAULTS

    assert object_phrase(SLOT_DEFAULTS["block"]) == "purple block"  # a 3 x 6 x 3 cm bar
    assert object_phrase(SLOT_DEFAULTS["cube"]) == "red cube"
