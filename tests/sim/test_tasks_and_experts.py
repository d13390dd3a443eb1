import numpy as np
import pytest

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.experts import ScriptedExpert
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.sim.tasks import get_task


def _state(cube=(0.0, 0.0, 0.02), zone=(0.0, 0.0), bowl=(0.2, 0.2), gripper=(0, 0, 0.1)):
    s = np.zeros(sl.STATE_DIM, np.float32)
    s[sl.slot("cube_pos")] = cube
    s[sl.slot("zone_pos")] = zone
    s[sl.slot("bowl_pos")] = bowl
    s[sl.slot("gripper_pos")] = gripper
    return s


def test_state_names_match_dim():
    assert len(sl.state_names()) == sl.STATE_DIM
    assert sl.state_names()[0] == "gripper_pos.x"


def test_push_success_and_reward_are_vectorised():
    task = get_task("push")
    batch = np.stack([_state(), _state(cube=(0.2, 0.0, 0.02))])
    np.testing.assert_array_equal(task.success(batch), [True, False])
    dense = task.reward(batch)
    assert dense.shape == (2,) and dense[0] > dense[1]
    np.testing.assert_array_equal(task.reward(batch, sparse=True), [1.0, 0.0])


def test_pick_place_success_needs_cube_in_bowl_and_low():
    task = get_task("pick_place")
    assert task.success(_state(cube=(0.2, 0.2, 0.024)))
    assert not task.success(_state(cube=(0.2, 0.2, 0.2)))  # held above the bowl
    assert not task.success(_state(cube=(0.0, 0.0, 0.02)))


def _success_rate(task: str, noise: float, episodes: int) -> float:
    env = TabletopEnv(task=task, terminate_on_success=True)
    wins = 0
    for ep in range(episodes):
        _, info = env.reset(seed=1000 + ep)
        expert = ScriptedExpert(task, noise=noise, seed=ep)
        for _ in range(env.task.max_episode_steps):
            _, _, terminated, _, info = env.step(expert.act(info["state"]))
            if terminated:
                break
        wins += info["is_success"]
    env.close()
    return wins / episodes


@pytest.mark.parametrize("task", ["push", "pick_place"])
def test_expert_succeeds_and_random_fails(task):
    assert _success_rate(task, 0.0, 6) >= 5 / 6
    assert _success_rate(task, 1.0, 4) == 0.0


def test_noise_must_be_a_fraction():
    with pytest.raises(ValueError, match="noise"):
        ScriptedExpert("push", noise=1.5)
