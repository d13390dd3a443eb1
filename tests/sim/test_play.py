import gymnasium as gym
import numpy as np
import pytest

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.play import SmoothRandom, TabletopPlay


def _play_episode(seed: int, steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(actions (steps, 7), gripper positions (steps + 1, 3)) of TabletopPlay in MuJoCo."""
    import cosmos_env  # noqa: F401  (registers the tabletop ids)

    env = gym.make("cosmos_env/Tabletop-Push-v0", image_size=32)
    _, info = env.reset(seed=seed)
    play = TabletopPlay(seed)
    actions, grippers = [], [sl.get(info["state"], "gripper_pos")]
    for _ in range(steps):
        action = play.act(info["state"])
        _, _, _, _, info = env.step(action)
        actions.append(action)
        grippers.append(sl.get(info["state"], "gripper_pos"))
    env.close()
    return np.asarray(actions), np.asarray(grippers)


def test_tabletop_play_is_seeded_and_moves_the_gripper_around_the_workspace():
    a, g = _play_episode(3)
    b, _ = _play_episode(3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (60, 7) and np.abs(a).max() <= 1.0
    # Goal-free but purposeful: it travels (many centimetres, several directions), and
    # opens and closes the gripper, unlike an expert's single approach.
    assert np.linalg.norm(np.diff(g, axis=0), axis=1).sum() > 0.3
    assert np.ptp(g[:, 0]) > 0.05 and np.ptp(g[:, 1]) > 0.05
    assert {-1.0, 1.0} <= set(np.round(a[:, 6], 3))
    other, _ = _play_episode(4)
    assert not np.array_equal(a, other)


def test_tabletop_play_often_visits_a_present_object():
    state = np.zeros(sl.STATE_DIM, np.float32)
    state[sl.slot("cube_present")] = 1.0
    state[sl.slot("cube_pos")] = [0.1, 0.05, 0.02]
    play = TabletopPlay(seed=0)
    near = 0
    for _ in range(200):
        play._new_target(state)
        near += np.linalg.norm(play._target[:2] - state[sl.slot("cube_pos")][:2]) < 0.05
    assert 0.45 < near / 200 < 0.8  # NEAR_OBJECT of the targets, the rest anywhere


def test_smooth_random_stays_in_bounds_and_is_smoother_than_uniform_actions():
    low = np.array([-1.0, -0.4, 0.0], np.float32)  # as a gym Box's bounds
    high = np.array([1.0, 0.4, 2.0], np.float32)
    play = SmoothRandom(low, high, seed=1)
    actions = np.stack([play.act() for _ in range(400)])
    assert actions.dtype == np.float32 and actions.shape == (400, 3)
    assert np.all(actions >= low) and np.all(actions <= high)
    uniform = np.random.default_rng(1).uniform(low, high, (400, 3))
    step, uniform_step = (np.abs(np.diff(x, axis=0)).mean() for x in (actions, uniform))
    assert step < 0.4 * uniform_step
    assert np.all(np.ptp(actions, axis=0) > 0.6 * (high - low))  # it still covers the range
    play.reset(seed=1)
    np.testing.assert_array_equal(np.stack([play.act() for _ in range(400)]), actions)


def test_smooth_random_refuses_unbounded_spaces_and_bad_smoothing():
    with pytest.raises(ValueError, match="bounded"):
        SmoothRandom(np.array([-np.inf]), np.array([1.0]))
    with pytest.raises(ValueError, match="smoothing"):
        SmoothRandom(np.array([-1.0]), np.array([1.0]), smoothing=0.0)
