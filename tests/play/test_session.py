"""The play session: the world model and its simulator started identical and stepped under
the same action; bad actions and starts refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.play.session import PlaySession, check_action


@pytest.fixture(scope="module")
def session(tiny_world_model_dir):
    session = PlaySession(load_world_model(tiny_world_model_dir))
    yield session
    session.close()


def test_a_simulator_reset_starts_both_worlds_from_the_same_frame(session):
    first = session.reset("simulator", 3)
    assert session.sources == ["simulator", "held-out"] and first.t == 0
    np.testing.assert_array_equal(first.world_model, first.simulator)
    assert first.difference.max() == 0 and first.psnr is None  # nothing predicted yet
    again = session.reset("simulator", 3)
    np.testing.assert_array_equal(again.simulator, first.simulator)  # the seed picks the start
    assert not np.array_equal(session.reset("simulator", 4).simulator, first.simulator)


def test_a_step_moves_both_worlds_under_the_same_action(session):
    start = session.reset("simulator", 0)
    action = [1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    step = session.step(action)
    assert step.t == 1 and step.action == action
    assert step.world_model.shape == (64, 64, 3) and step.world_model.dtype == np.uint8
    assert not np.array_equal(step.simulator, start.simulator)  # the arm moved in MuJoCo
    expected = np.clip(
        np.abs(step.world_model.astype(int) - step.simulator.astype(int)) * 4, 0, 255
    )
    np.testing.assert_array_equal(step.difference, expected)
    assert np.isfinite(step.psnr) and np.isfinite(step.reward)
    assert step.simulator_reward is not None
    assert session.step([2.0] * 7).action == [1.0] * 7  # clipped to the action range


def test_a_held_out_start_leaves_the_simulator_out_of_step(session, tiny_world_model_dir):
    wm = load_world_model(tiny_world_model_dir)
    first = session.reset("held-out", 2)
    assert first.simulator is None and first.psnr is None
    np.testing.assert_array_equal(first.world_model, wm.reset_frames[2])
    step = session.step([0.0] * 7)
    assert step.simulator is None and step.simulator_reward is None and step.t == 1


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ([float("nan")] + [0.0] * 6, r"action\[0\] is nan, not a finite number"),
        ([0.0] * 6 + [float("inf")], r"action\[6\] is inf, not a finite number"),
        ([None] + [0.0] * 6, r"action\[0\] is None, not a number"),
        ([0.0] * 3, "a list of 7 numbers"),
        ("up", "a list of 7 numbers"),
        ([True] + [0.0] * 6, r"action\[0\] is True, not a number"),
    ],
)
def test_a_bad_action_is_refused_with_the_reason(action, message):
    with pytest.raises(ValueError, match=message):
        check_action(action, 7)


def test_a_bad_start_is_refused(session):
    with pytest.raises(ValueError, match="start 'mujoco' unknown here"):
        session.reset("mujoco", 0)
    with pytest.raises(ValueError, match="held-out start 99 out of range: 6 ship"):
        session.reset("held-out", 99)
    with pytest.raises(ValueError, match="integer >= 0"):
        session.reset("simulator", -1)
