import gymnasium as gym
import numpy as np
import pytest

import cosmos_env  # noqa: F401
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC


@pytest.fixture(scope="module")
def env():
    env = TabletopEnv(task="push")
    yield env
    env.close()


def test_spaces_and_obs(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (64, 64, 3)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert env.action_space.shape == (7,) and env.action_space.dtype == np.float32
    assert info["state"].shape == (sl.STATE_DIM,)
    assert info["is_success"] is False
    assert obs.std() > 10  # a real picture, not a blank buffer


def test_same_seed_same_frames_and_states(env):
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 7)).astype(np.float32)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=123)
        frames = [obs]
        for a in actions:
            obs, *_ = env.step(a)
            frames.append(obs)
        runs.append(np.stack(frames))
    np.testing.assert_array_equal(runs[0], runs[1])
    other, _ = env.reset(seed=124)
    assert not np.array_equal(other, runs[0][0])


def test_action_moves_gripper_by_spec(env):
    _, info = env.reset(seed=1)
    before = sl.get(info["state"], "gripper_pos").copy()
    action = np.array([1, 0, 0, 0, 0, 0, 1], np.float32)
    _, _, _, _, info = env.step(action)
    moved = sl.get(info["state"], "gripper_pos") - before
    assert moved[0] == pytest.approx(BRIDGE_ACTION_SPEC.high[0], abs=0.005)
    assert abs(moved[1]) < 0.005 and abs(moved[2]) < 0.005


def test_gripper_action_opens_and_closes(env):
    _, info = env.reset(seed=2)
    assert sl.get(info["state"], "gripper_opening")[0] > 0.07
    close = np.array([0, 0, 0, 0, 0, 0, -1], np.float32)
    _, _, _, _, info = env.step(close)
    assert sl.get(info["state"], "gripper_opening")[0] < 0.005


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(6, np.float32), "shape"),
        (np.zeros((1, 7), np.float32), "shape"),
        (np.zeros(7, np.int64), "dtype"),
        (np.full(7, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_actions_are_refused(env, action, message):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_step_before_reset_is_refused():
    env = TabletopEnv(task="push")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(7, np.float32))
    env.close()


def test_unknown_task_and_bad_object_count():
    with pytest.raises(ValueError, match="unknown tabletop task"):
        TabletopEnv(task="stack")
    with pytest.raises(ValueError, match="n_objects"):
        TabletopEnv(n_objects=4)


@pytest.mark.parametrize("size", [96, 128])
def test_configurable_resolution(size):
    env = gym.make("cosmos_env/Tabletop-PickPlace-v0", image_size=size, n_objects=3)
    obs, info = env.reset(seed=0)
    assert obs.shape == (size, size, 3)
    assert sl.get(info["state"], "block_present")[0] == 1.0
    assert env.render().shape == (size, size, 3)
    env.close()


def test_proprio_observation():
    env = TabletopEnv(task="push", proprio=True)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"rgb", "proprio"}
    np.testing.assert_allclose(obs["proprio"][:3], sl.get(info["state"], "gripper_pos"))
    assert env.observation_space.contains(obs)
    env.close()


def test_wrist_camera_renders_a_different_view():
    front = TabletopEnv(task="push")
    wrist = TabletopEnv(task="push", camera="wrist")
    a, _ = front.reset(seed=0)
    b, _ = wrist.reset(seed=0)
    assert not np.array_equal(a, b)
    front.close()
    wrist.close()


def test_time_limit_truncates():
    env = gym.make("cosmos_env/Tabletop-Push-v0")
    env.reset(seed=0)
    truncated = False
    steps = 0
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(7, np.float32))
        assert not terminated
        steps += 1
    assert steps == 50
    env.close()


def test_state_spec_describes_the_layout(env):
    spec = env.state_spec
    assert spec == sl.tabletop_state_spec(env.world.projection("front"))
    assert spec.dim == sl.STATE_DIM == 36
    assert spec.dim_names() == sl.state_names() == env.state_names
    for s in sl.STATE_SLOTS:  # the same dims as the layout's own slots
        assert spec.slot(s.name) == s.slice
    ee = spec.end_effector
    assert (ee.position, ee.orientation, ee.action_delta) == (
        "gripper_pos",
        "gripper_quat",
        (0, 1, 2),
    )
    assert BRIDGE_ACTION_SPEC.names[:3] == ("dx", "dy", "dz")
    assert spec.objects == sl.OBJECT_NAMES == ("cube", "cylinder", "block")
    kinds = {s.name: (s.kind, s.unit) for s in spec.slots}
    assert kinds["gripper_opening"] == ("joint", "m")
    assert kinds["cube_present"] == ("flag", "")
    assert kinds["block_quat"] == ("quaternion", "")
    assert kinds["zone_pos"] == ("position", "m")
    np.testing.assert_allclose(spec.projection("front"), env.world.projection("front"))
    assert list(spec.cameras) == ["front"]
    assert sl.tabletop_state_spec().cameras == {}
