"""World-model envs of an instruction model (a tiny random release of the instructed
tabletop): the instruction of reset(options=...) or of the reset state, carried in info
and in the state's instruction slots, passed through the guard, guidance, vector-env
autoresets that keep a given instruction, and the Gymnasium and SB3 env checkers."""

import gymnasium as gym
import numpy as np
import pytest

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.guardrails.text import TextRefused
from cosmos_env.sim.instructions import decode_instruction
from cosmos_env.sim.worlds import tabletop_world

# In the tiny release's vocabulary (tests/conftest.py's make_tiny_instruct_world_model); not
# imported from there: `from conftest import` may find another folder's conftest.
RED = "put the red cube in the yellow bowl"
BLUE = "push the blue cylinder into the green zone"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def instruct_release(tiny_instruct_world_model_dir):
    return tiny_instruct_world_model_dir


def test_reset_follows_the_given_instruction_and_says_so(instruct_release):
    env = WorldModelEnv(checkpoint=str(instruct_release))
    _, info = env.reset(seed=0, options={"instruction": RED})
    assert info["instruction"] == RED
    # The state's instruction slots name it, so success is the named task's.
    assert decode_instruction(info["state"]).key == "put/cube/bowl"
    obs, _, _, _, info = env.step(env.action_space.sample())
    assert info["instruction"] == RED and obs.shape == (64, 64, 3)
    # Without one, the reset state's own instruction.
    wm = load_world_model(instruct_release)
    _, info = env.reset(seed=0)
    carried = tabletop_world("instruct", 3).instructions(wm.reset_states)
    assert info["instruction"] in carried


def test_the_instruction_changes_the_imagined_frames(instruct_release):
    def first_frame(instruction, guidance=1.0):
        env = WorldModelEnv(checkpoint=str(instruct_release), guidance=guidance)
        env.reset(seed=3, options={"instruction": instruction})
        return env.step(np.zeros(7, np.float32))[0]

    red = first_frame(RED)
    np.testing.assert_array_equal(red, first_frame(RED))  # seeded
    assert not np.array_equal(red, first_frame(BLUE))
    assert not np.array_equal(red, first_frame(RED, guidance=3.0))


def test_a_refused_or_unknown_instruction_generates_nothing(instruct_release):
    env = WorldModelEnv(checkpoint=str(instruct_release))
    with pytest.raises(TextRefused, match="nothing was generated"):
        env.reset(seed=0, options={"instruction": "kill the red cube"})
    with pytest.raises(ValueError, match="no instruction this tabletop knows"):
        env.reset(seed=0, options={"instruction": "stack the red cube on the bowl"})


def test_a_model_without_text_refuses_an_instruction(tiny_world_model_dir):
    env = WorldModelEnv(checkpoint=str(tiny_world_model_dir))
    with pytest.raises(ValueError, match="follows no instructions"):
        env.reset(seed=0, options={"instruction": RED})
    assert "instruction" not in env.reset(seed=0)[1]


def test_vector_env_rows_keep_their_given_instruction(instruct_release):
    env = WorldModelVectorEnv(2, checkpoint=str(instruct_release), max_episode_steps=2)
    _, info = env.reset(seed=0, options={"instruction": [RED, BLUE]})
    assert list(info["instruction"]) == [RED, BLUE]
    for _ in range(3):  # past the time limit: both rows autoreset
        _, _, _, _, info = env.step(np.zeros((2, 7), np.float32))
    assert list(info["instruction"]) == [RED, BLUE]
    with pytest.raises(ValueError, match="1 instructions for 2 reset rows"):
        env.reset(seed=0, options={"instruction": [RED]})


def test_instruction_envs_pass_the_env_checkers(instruct_release):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = WorldModelEnv(checkpoint=str(instruct_release))
    check_env(env, skip_render_check=True)
    sb3_check_env(gym.wrappers.TimeLimit(env, 5), warn=False)


def test_an_action_free_model_is_no_env(tiny_action_free_instruct_dir):
    with pytest.raises(ValueError, match="reads no actions .* imagine"):
        WorldModelEnv(tiny_action_free_instruct_dir)
