"""Landmarks: the moving bodies' positions in a Gymnasium world's state, and the rendered
view's projection that puts them on the frame."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import cosmos_env  # noqa: F401
from cosmos_env.config import GenerateConfig, WorldConfig
from cosmos_env.data.world import load_world
from cosmos_env.sim.camera import project, rendered_projection
from cosmos_env.sim.gym_experts import gym_expert
from cosmos_env.sim.landmarks import auto_landmarks
from cosmos_env.sim.recorder import state_spec_of
from cosmos_env.sim.worlds import build_world, gym_mujoco_world

TOP = {"trackbodyid": -1, "distance": 0.62, "elevation": -90.0, "azimuth": 90.0}
TOP_VIEW = {"default_camera_config": {**TOP, "lookat": [0.0, 0.0, 0.0]}}


def test_auto_landmarks_are_the_moving_bodies_off_their_parents():
    env = gym.make("Reacher-v5")
    # body0 turns in place at the origin: no landmark; the target moves between resets.
    assert auto_landmarks(env) == ["body1", "fingertip", "target"]
    env = gym.make("Pusher-v5")
    marks = auto_landmarks(env)
    assert "tips_arm" not in marks  # at its parent's origin: the wrist adds the point
    assert {"object", "r_elbow_flex_link", "r_wrist_flex_link"} <= set(marks)
    assert "goal" not in marks  # Pusher's goal sits at one place in every episode


def test_landmark_states_hold_the_bodies_positions_after_qpos_qvel():
    world = gym_mujoco_world("Reacher-v5", TOP_VIEW, landmarks="auto")
    spec = world.state_spec
    assert spec.dim == 8 + 3 * 3 and spec.landmarks == ("body1", "fingertip", "target")
    assert list(spec.named_positions()) == ["body1", "fingertip", "target"]
    env = world.make_env(16)
    assert state_spec_of(env) == spec  # the recorder reads the wrapper's spec
    expert = gym_expert("Reacher-v5", noise=0.5, seed=0)
    _, info = env.reset(seed=3)
    scratch = mujoco.MjData(env.unwrapped.model)
    for _ in range(6):
        state = info["state"]
        scratch.qpos[:], scratch.qvel[:] = state[:4], state[4:8]
        mujoco.mj_kinematics(env.unwrapped.model, scratch)  # positions follow the joints
        np.testing.assert_allclose(spec.get(state, "fingertip_pos"), scratch.xpos[3], atol=1e-6)
        np.testing.assert_allclose(spec.get(state, "target_pos"), scratch.xpos[4], atol=1e-6)
        _, reward, *_, info = env.step(expert.act(state))
    # The reward reads the qpos/qvel prefix: the same as the plain world's.
    plain = gym_mujoco_world("Reacher-v5", TOP_VIEW)
    action = np.zeros((1, 2))
    np.testing.assert_allclose(
        world.reward(None, action, info["state"][None]),
        plain.reward(None, action, info["state"][None, :8]),
    )
    frame, state = world.reset(seed=3, image_size=16)
    assert frame.shape == (16, 16, 3) and state.shape == (spec.dim,)


def test_the_rendered_projection_puts_bodies_where_they_are_drawn():
    world = gym_mujoco_world("Reacher-v5", TOP_VIEW, landmarks="auto")
    env = world.make_env(64)
    _, info = env.reset(seed=1)
    frame = env.render()
    projection = world.state_spec.projection()
    np.testing.assert_allclose(projection, rendered_projection(env), atol=1e-9)
    u, v = (
        (project(projection, world.state_spec.get(info["state"], "target_pos")) + 1) * 32
    ).astype(int)
    red, green, blue = frame[v, u].astype(int)
    assert red > 100 and green < 60 and blue < 60  # the red target ball
    origin = ((project(projection, np.zeros(3)) + 1) * 32).astype(int)
    assert (np.abs(origin - 32) <= 1).all()  # the view looks straight down at the origin


def test_a_moving_view_has_no_projection():
    # HalfCheetah's "track" camera follows the body's centre of mass.
    world = gym_mujoco_world("HalfCheetah-v5", camera="track", landmarks=["ffoot"])
    assert world.state_spec.landmarks == ("ffoot",) and not world.state_spec.cameras
    env = world.make_env(16)
    env.reset(seed=0)
    assert rendered_projection(env) is None
    # Its default (free) view stays put: that one has a projection.
    assert list(gym_mujoco_world("HalfCheetah-v5", landmarks=["ffoot"]).state_spec.cameras) == [
        "default"
    ]


def test_landmarks_round_trip_through_the_description_and_configs():
    world = gym_mujoco_world("Reacher-v5", TOP_VIEW, landmarks="auto")
    description = world.describe()
    assert description["kwargs"]["landmarks"] == ["body1", "fingertip", "target"]
    assert load_world(description).state_spec == world.state_spec
    # A world without landmarks describes itself as before: old releases rebuild it.
    assert "landmarks" not in gym_mujoco_world("Reacher-v5").describe()["kwargs"]
    cfg = GenerateConfig(
        world=WorldConfig(name="gym", landmarks=["fingertip"]), env_id="Reacher-v5"
    )
    assert build_world(cfg).state_spec.landmarks == ("fingertip",)
    with pytest.raises(ValueError, match="no body 'elbow'"):
        gym_mujoco_world("Reacher-v5", landmarks=["elbow"])
