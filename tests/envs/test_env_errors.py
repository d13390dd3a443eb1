"""Bad env arguments are refused where they enter (the constructor), with an error that
names the problem: unknown task, sampler or backend, sampler steps that are not a whole
number >= 1, a reset store that holds no held-out episode."""

import pytest

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.generate import generate


def test_an_unknown_world_is_named_before_any_checkpoint_is_looked_up():
    with pytest.raises(ValueError, match="no shipped world model of world 'bogus'"):
        WorldModelEnv(world="bogus")


def test_the_generic_id_needs_a_checkpoint():
    with pytest.raises(ValueError, match="needs checkpoint=DIR"):
        WorldModelEnv()


def test_a_checkpoint_of_another_world_is_refused_by_a_per_world_id(tiny_world_model_dir):
    with pytest.raises(ValueError, match="is a world model of 'tabletop-push'.*WorldModel-v0"):
        WorldModelEnv(world="gym:Reacher-v5", checkpoint=str(tiny_world_model_dir))


def test_an_unknown_backend_is_named():
    with pytest.raises(ValueError, match=r"backend 'gan' unknown; choose from \['ar'"):
        WorldModelEnv(backend="gan")


def test_an_unknown_sampler_is_refused_at_construction(tiny_world_model_dir):
    with pytest.raises(ValueError, match=r"sampler='bogus' unknown .* choose one of"):
        WorldModelVectorEnv(2, checkpoint=str(tiny_world_model_dir), sampler="bogus")


@pytest.mark.parametrize("steps", [0, -1, 2.7, True, "two"])
def test_sampler_steps_must_be_a_whole_number_of_at_least_one(tiny_world_model_dir, steps):
    with pytest.raises(ValueError, match="sampler_steps must be a whole number >= 1"):
        WorldModelVectorEnv(2, checkpoint=str(tiny_world_model_dir), sampler_steps=steps)


def test_whole_sampler_steps_are_taken(tiny_world_model_dir):
    env = WorldModelVectorEnv(2, checkpoint=str(tiny_world_model_dir), sampler_steps=2.0)
    assert env.core.sampler_steps == 2
    env.close()


def test_a_one_episode_reset_store_is_refused_with_the_reason(tiny_world_model_dir, tmp_path):
    out = tmp_path / "one.zarr"
    args = [f"out={out}", "episodes=1", "workers=1", "max_steps=2"]
    generate(load_config("generate", GenerateConfig, args))
    with pytest.raises(ValueError, match="has 1 episode\\(s\\), so none is held out"):
        WorldModelVectorEnv(2, checkpoint=str(tiny_world_model_dir), store=str(out))
