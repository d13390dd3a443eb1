"""The World protocol's simulator implementations: the tabletop tasks and Gymnasium MuJoCo
envs score states as their envs do, refuse envs they cannot describe, and travel as data."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import cosmos_env  # noqa: F401
from cosmos_env.config import GenerateConfig
from cosmos_env.data.world import World, load_world
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.gym_experts import gym_expert
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC
from cosmos_env.sim.tasks import get_task
from cosmos_env.sim.worlds import (
    GymMujocoWorld,
    TabletopTaskWorld,
    build_world,
    gym_mujoco_world,
    tabletop_world,
)


def _rollout(env, act, steps: int, seed: int = 0):
    """States concat(qpos, qvel) float32 (T+1, S), actions (T, A) and returned rewards (T,)."""
    data = env.unwrapped.data
    env.reset(seed=seed)
    states, actions, rewards = [np.r_[data.qpos, data.qvel].astype(np.float32)], [], []
    for _ in range(steps):
        action = act(states[-1])
        _, reward, *_ = env.step(action)
        states.append(np.r_[data.qpos, data.qvel].astype(np.float32))
        actions.append(action)
        rewards.append(reward)
    return np.stack(states), np.stack(actions), np.asarray(rewards)


def test_tabletop_world_scores_states_as_its_env_does():
    world = tabletop_world("push", n_objects=2)
    assert isinstance(world, World) and world.name == "tabletop-push"
    assert world.action_spec == BRIDGE_ACTION_SPEC and world.max_episode_steps == 50
    assert world.has_reward and world.has_success and world.has_termination
    env = world.make_env(32, terminate_on_success=False)
    assert env.unwrapped.state_spec == world.state_spec  # same slots, roles and projection
    assert world.state_spec.projection("front").shape == (3, 4)
    _, info = env.reset(seed=1)
    rng = np.random.default_rng(0)
    states, actions, rewards, successes = [info["state"]], [], [], []
    for _ in range(6):
        action = rng.uniform(-1, 1, 7).astype(np.float32)
        _, reward, _, _, info = env.step(action)
        states.append(info["state"])
        actions.append(BRIDGE_ACTION_SPEC.scale(action))
        rewards.append(reward)
        successes.append(info["is_success"])
    states = np.stack(states)
    got = world.reward(states[:-1], np.stack(actions), states[1:])
    np.testing.assert_allclose(got, rewards, rtol=1e-12)
    assert list(world.success(states[1:])) == successes
    assert not world.terminated(states).any()  # only success ends it, by the env option
    cube_in_zone = states[:1].copy()  # move the cube onto the zone: success
    cube_in_zone[0, sl.slot("cube_pos")][:2] = sl.get(cube_in_zone[0], "zone_pos")
    assert world.success(cube_in_zone)[0] and get_task("push").success(cube_in_zone)[0]
    env.close()


def test_tabletop_world_reset_gives_the_envs_first_frame_and_state():
    world = tabletop_world("pick_place", n_objects=1)
    frame, state = world.reset(seed=3, image_size=32)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    env = world.make_env(32)
    obs, info = env.reset(seed=3)
    np.testing.assert_array_equal(frame, obs)
    np.testing.assert_array_equal(state, info["state"])
    assert world.max_episode_steps == 60 and env.spec.max_episode_steps == 60
    env.close()
    world.close()


def test_reacher_world_reward_equals_the_envs_reward():
    world = gym_mujoco_world("Reacher-v5")
    assert isinstance(world, GymMujocoWorld) and isinstance(world, World)
    assert world.has_reward and world.has_termination and not world.has_success
    assert world.state_spec.dim == 8 and world.action_spec.dim == 2
    assert world.max_episode_steps == 50
    env = gym.make("Reacher-v5")
    expert = gym_expert("Reacher-v5", seed=0)
    states, actions, rewards = _rollout(env, expert.act, 50)
    np.testing.assert_allclose(world.reward(states[:-1], actions, states[1:]), rewards, atol=1e-6)
    assert not world.terminated(states).any()  # Reacher never terminates
    env.close()


def test_reacher_world_reward_is_the_envs_reward_function_of_the_arrived_state():
    """Under random torques the env's returned reward reads body positions of the last RK4
    stage (Gymnasium does not refresh kinematics after mj_step): up to ~1e-3 off the
    arrived state's. With the kinematics refreshed the env's own function agrees exactly."""
    world = gym_mujoco_world("Reacher-v5")
    env = gym.make("Reacher-v5")
    u, rng = env.unwrapped, np.random.default_rng(0)
    env.reset(seed=2)
    for _ in range(30):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        before = np.r_[u.data.qpos, u.data.qvel]
        _, returned, *_ = env.step(action)
        after = np.r_[u.data.qpos, u.data.qvel]
        got = world.reward(before[None], action[None], after[None])[0]
        assert abs(got - returned) < 5e-3
        mujoco.mj_kinematics(u.model, u.data)
        assert got == pytest.approx(u._get_rew(action.astype(np.float64))[0], abs=1e-12)
    env.close()


def test_gym_world_reads_env_kwargs_and_healthy_termination():
    doubled = gym_mujoco_world("Reacher-v5", {"reward_dist_weight": 2.0})
    plain = gym_mujoco_world("Reacher-v5")
    state = plain.reset(seed=0, image_size=16)[1][None]
    action = np.zeros((1, 2))
    assert doubled.reward(state, action, state)[0] == pytest.approx(
        2 * plain.reward(state, action, state)[0]
    )
    hopper = gym_mujoco_world("Hopper-v5")
    assert hopper.has_termination and not hopper.has_reward  # its reward needs a velocity
    _, standing = hopper.reset(seed=0, image_size=16)
    fallen = standing.copy()
    fallen[1] = 0.2  # torso height below the healthy range
    assert list(hopper.terminated(np.stack([standing, fallen]))) == [False, True]
    with pytest.raises(NotImplementedError, match="learned reward head"):
        hopper.reward(fallen[None], np.zeros((1, 3)), fallen[None])


@pytest.mark.parametrize(
    "env_id, message",
    [("CartPole-v1", r"CartPole-v1 has action space Discrete\(2\)"), ("Pendulum-v1", "MuJoCo")],
)
def test_gym_world_refuses_envs_it_cannot_describe(env_id, message):
    with pytest.raises(ValueError, match=message):
        gym_mujoco_world(env_id)


def test_gym_world_renders_its_camera_without_shadows():
    world = gym_mujoco_world("Hopper-v5", camera="track")
    env = world.make_env(24, max_episode_steps=5)
    assert env.unwrapped.model.vis.quality.shadowsize == 0
    assert env.unwrapped.camera_name == "track" and env.spec.max_episode_steps == 5
    frame, state = world.reset(seed=4, image_size=24)
    assert frame.shape == (24, 24, 3) and frame.dtype == np.uint8 and state.shape == (12,)
    env.reset(seed=4)
    np.testing.assert_array_equal(env.render(), frame)  # same seed, same view
    env.close()
    world.close()
    free = gym_mujoco_world("Reacher-v5", camera="-1").make_env(16)
    assert free.unwrapped.camera_id == -1
    free.close()


@pytest.mark.parametrize("camera, message", [("top", r"no camera 'top'"), (0, "no camera id 0")])
def test_gym_world_refuses_a_camera_its_model_lacks(camera, message):
    with pytest.raises(ValueError, match=message):
        gym_mujoco_world("Reacher-v5", camera=camera)  # Reacher has no fixed camera


@pytest.mark.parametrize(
    "world",
    [
        lambda: tabletop_world("pick_place", n_objects=3),
        lambda: gym_mujoco_world("Reacher-v5", {"reward_dist_weight": 2.0}, camera="-1"),
    ],
)
def test_describe_round_trips_through_load_world(world):
    world = world()
    rebuilt = load_world(world.describe())
    assert type(rebuilt) is type(world) and rebuilt.describe() == world.describe()
    assert rebuilt.state_spec == world.state_spec and rebuilt.action_spec == world.action_spec


def test_build_world_from_generate_configs():
    tabletop = build_world(GenerateConfig(task="pick_place"))
    assert isinstance(tabletop, TabletopTaskWorld) and tabletop.name == "tabletop-pick_place"
    cfg = GenerateConfig(env_id="Reacher-v5", env_kwargs={"reward_dist_weight": 2.0})
    cfg.world.name = "gym"
    gym_world = build_world(cfg)
    assert gym_world.describe()["kwargs"]["env_kwargs"] == {"reward_dist_weight": 2.0}
    cfg.env_id = None
    with pytest.raises(ValueError, match="env_id"):
        build_world(cfg)
    cfg.world.name = "atari"
    with pytest.raises(ValueError, match="unknown world 'atari'"):
        build_world(cfg)
