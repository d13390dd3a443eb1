"""compare on an instruction model: each episode's instruction comes from its first state,
guidance is recorded and changes the prediction, and a model that reads instructions
without a world to name them is refused."""

import numpy as np
import pytest

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.eval.compare import compare, predict, world_of
from cosmos_env.eval.simulate import simulate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setting(tiny_instruct_world_model_dir):
    wm = load_world_model(tiny_instruct_world_model_dir)
    world = world_of(wm)
    truth = simulate(world, "scripted", 0.3, 2, 3, 9999, wm.image_size)
    return wm, world, truth


def test_compare_follows_each_episodes_instruction_with_guidance(setting):
    wm, world, truth = setting
    result, pred = compare(wm, truth, 0, "euler", 1, world=world, guidance=2.0)
    assert result["guidance"] == 2.0 and np.isfinite(result["summary"]["psnr_h1"])
    plain = predict(wm, truth, 0, "euler", 1, world=world)
    assert not np.array_equal(plain.frames, pred.frames)


def test_an_instruction_model_needs_a_world_that_names_instructions(setting):
    wm, _, truth = setting
    with pytest.raises(ValueError, match="follows instructions, and its world"):
        predict(wm, truth, 0, "euler", 1, world=None)
