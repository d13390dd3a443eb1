"""Policies run from the same initial states in MuJoCo and in a world model."""

import numpy as np
import pytest

from cosmos_env.dynamics.release import load_world_model
from policies.base import BatchPolicy
from policies.evaluate import (
    initial_seeds,
    initial_states,
    mujoco_vector_env,
    run_in_mujoco,
    run_in_world_model,
)
from policies.scripted import ScriptedPolicy


class RecordingPolicy(BatchPolicy):
    """Zero actions; remembers the states it was shown."""

    name = "recorder"

    def __init__(self):
        super().__init__()
        self.seen = []

    def act_batch(self, obs, info=None):
        self.seen.append(np.asarray(info["state"]).copy())
        return np.zeros((len(obs), 7), np.float32)


@pytest.fixture(scope="module")
def mujoco():
    env = mujoco_vector_env("push", 3)
    yield env
    env.close()


def test_initial_states_are_the_seeded_resets(mujoco):
    seeds = initial_seeds(11, 3)
    assert seeds == initial_seeds(11, 3) and len(set(seeds)) == 3
    frames, states, _ = initial_states(mujoco, seeds)
    again, states_again, _ = initial_states(mujoco, seeds)
    assert frames.shape == (3, 64, 64, 3) and states.shape == (3, 36)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(states, states_again)


def test_expert_succeeds_in_mujoco_and_records_when(mujoco):
    results = run_in_mujoco(ScriptedPolicy("push", 0.0), mujoco, initial_seeds(0, 3))
    assert results.success.shape == results.returns.shape == (3,)
    assert results.success_rate >= 2 / 3  # the expert pushes 98% of cubes in
    assert np.all((results.first_success > 0) == results.success)
    assert np.all(results.first_success <= 50)


def test_world_model_rows_start_from_the_mujoco_states(mujoco, tiny_world_model_dir):
    wm = load_world_model(tiny_world_model_dir)
    frames, states, _ = initial_states(mujoco, initial_seeds(1, 3))
    policy = RecordingPolicy()
    results = run_in_world_model(policy, wm, frames, states, steps=4)
    np.testing.assert_allclose(policy.seen[0], states, atol=1e-5)
    assert len(policy.seen) == 4 and results.returns.shape == (3,)
    repeat = run_in_world_model(RecordingPolicy(), wm, frames, states, steps=4)
    np.testing.assert_array_equal(results.returns, repeat.returns)  # seeded: identical
