import gymnasium as gym
import mujoco
import numpy as np
import pytest

import cosmos_env  # noqa: F401
from cosmos_env.data import EpisodeStore
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim.recorder import (
    EpisodeRecorder,
    action_spec_of,
    features_for,
    mujoco_state_spec,
    state_spec_of,
)


def _record(env_id: str, episodes: int, tmp_path, max_steps: int = 12):
    env = gym.make(
        env_id, render_mode="rgb_array", width=64, height=64, max_episode_steps=max_steps
    )
    env.unwrapped.model.vis.quality.shadowsize = 0
    store = EpisodeStore.create(
        tmp_path / "gym.zarr",
        features=features_for(env, 64),
        action_spec=action_spec_of(env),
        fps=1.0 / env.unwrapped.dt,
        world=f"gym:{env_id}",
        state_spec=state_spec_of(env),
    )
    recorder = EpisodeRecorder(env, store.append_episode, image_size=64, source=env_id)
    sent_actions = []
    for ep in range(episodes):
        recorder.reset(seed=ep)
        done, actions = False, []
        while not done:
            action = recorder.action_space.sample()
            actions.append(action)
            *_, terminated, truncated, _ = recorder.step(action)
            done = terminated or truncated
        sent_actions.append(np.stack(actions))
    store.finalize()
    recorder.close()
    return EpisodeStore.open(tmp_path / "gym.zarr"), env, sent_actions


@pytest.mark.parametrize("env_id", ["Pusher-v5", "Reacher-v5"])
def test_records_gym_mujoco_episodes(env_id, tmp_path):
    store, env, sent = _record(env_id, 2, tmp_path)
    assert store.n_episodes == 2
    ep = store.load_episode(1)
    model = env.unwrapped.model
    assert ep["rgb"].shape == (13, 64, 64, 3) and ep["rgb"].dtype == np.uint8
    assert ep["state"].shape == (13, model.nq + model.nv)
    assert ep["is_first"][0] and ep["is_last"][-1] and ep["is_last"].sum() == 1
    np.testing.assert_array_equal(ep["action"][-1], 0.0)  # padding action on the last row
    # Stored actions are the sent ones, normalised to [-1, 1] by the Box bounds.
    space = env.action_space
    physical = store.action_spec.scale(ep["action"][:-1])
    np.testing.assert_allclose(physical, sent[1], atol=1e-5)
    assert np.all(np.abs(ep["action"]) <= 1.0 + 1e-6)
    assert space.shape == (store.action_spec.dim,)
    assert ep["rgb"].std() > 1.0
    assert store.source_id(0).startswith(env_id)
    # truncated by the time limit, and these envs report no success
    assert not ep["is_terminal"].any() and not ep["is_success"].any()
    assert store.state_spec.dim == model.nq + model.nv
    assert store.features["state"].names == store.state_spec.dim_names()


def test_recorder_refuses_env_without_rgb_rendering(tmp_path):
    env = gym.make("Reacher-v5")
    with pytest.raises(ValueError, match="rgb_array"):
        EpisodeRecorder(env, lambda *a: None)


def test_recorder_resizes_to_store_resolution():
    env = gym.make("cosmos_env/Tabletop-Push-v0", image_size=96, max_episode_steps=3)
    episodes = []
    recorder = EpisodeRecorder(env, lambda ep, *_: episodes.append(ep), image_size=32)
    recorder.reset(seed=0)
    for _ in range(3):
        recorder.step(np.zeros(7, np.float32))
    assert episodes[0]["rgb"].shape == (4, 32, 32, 3)
    assert episodes[0]["state"].shape[1] == len(env.unwrapped.state_names)


def test_state_spec_of_reacher_names_its_joints():
    env = gym.make("Reacher-v5", render_mode="rgb_array", width=64, height=64)
    model = env.unwrapped.model
    spec = state_spec_of(env)
    assert sum(slot.size for slot in spec.slots) == spec.dim == model.nq + model.nv
    joints = [model.joint(j).name for j in range(model.njnt)]
    assert joints == ["joint0", "joint1", "target_x", "target_y"]
    assert [s.name for s in spec.slots] == joints + [f"{j}_vel" for j in joints]
    assert [(s.kind, s.unit) for s in spec.slots[:4]] == [
        ("joint", "rad"),
        ("joint", "rad"),
        ("joint", "m"),
        ("joint", "m"),
    ]
    assert {s.kind for s in spec.slots[4:]} == {"velocity"}
    assert spec.slots[4].unit == "rad/s" and spec.slots[6].unit == "m/s"
    # the dims are concat(qpos, qvel), in that order
    env.reset(seed=0)
    data = env.unwrapped.data
    state = np.concatenate([data.qpos, data.qvel])
    np.testing.assert_array_equal(spec.get(state, "target_y"), data.qpos[3:4])
    np.testing.assert_array_equal(spec.get(state, "joint1_vel"), data.qvel[1:2])
    assert spec.end_effector is None and not spec.objects
    env.close()


def test_mujoco_state_spec_of_free_ball_and_unnamed_joints():
    model = mujoco.MjModel.from_xml_string(
        """<mujoco><worldbody>
        <body name="box"><freejoint name="box"/><geom size="0.1 0.1 0.1" type="box"/></body>
        <body name="arm"><joint name="shoulder" type="ball"/><geom size="0.1"/>
          <body><joint type="hinge"/><geom size="0.1"/></body>
          <body><joint name="rail" type="slide"/><geom size="0.1"/></body>
        </body></worldbody></mujoco>"""
    )
    spec = mujoco_state_spec(model)
    assert [(s.name, s.size, s.kind, s.unit) for s in spec.slots] == [
        ("box_pos", 3, "position", "m"),
        ("box_quat", 4, "quaternion", ""),
        ("shoulder_quat", 4, "quaternion", ""),
        ("joint2", 1, "joint", "rad"),
        ("rail", 1, "joint", "m"),
        ("box_vel", 6, "velocity", "m/s, rad/s"),
        ("shoulder_vel", 3, "velocity", "rad/s"),
        ("joint2_vel", 1, "velocity", "rad/s"),
        ("rail_vel", 1, "velocity", "m/s"),
    ]
    assert spec.dim == model.nq + model.nv == 13 + 11
    assert spec.position_slot("box_pos") == slice(0, 3)


def test_state_spec_of_tabletop_is_its_own_and_flat_otherwise():
    env = gym.make("cosmos_env/Tabletop-Push-v0")
    assert state_spec_of(env) is env.unwrapped.state_spec
    env.close()

    class NoModel(gym.Env):  # an env that states its state names and nothing else
        state_names = ("a", "b")

    assert state_spec_of(NoModel()) == StateSpec.flat(("a", "b"))


class _EndsAt(gym.Wrapper):
    """Terminates on step `k` and reports success there (and on the step before)."""

    def __init__(self, env, k):
        super().__init__(env)
        self.k, self.t = k, 0

    def reset(self, **kwargs):
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, _, truncated, info = self.env.step(action)
        self.t += 1
        info = {**info, "is_success": self.t >= self.k - 1}
        return obs, reward, self.t == self.k, truncated, info


def test_is_terminal_and_is_success_columns(tmp_path):
    env = _EndsAt(gym.make("cosmos_env/Tabletop-Push-v0", max_episode_steps=10), k=3)
    features = features_for(env, 32)
    assert features["is_terminal"].dtype == features["is_success"].dtype == "bool"
    assert features["is_terminal"].shape == ()
    store = EpisodeStore.create(
        tmp_path / "s.zarr",
        features=features,
        action_spec=action_spec_of(env),
        fps=5.0,
        world="tabletop",
        state_spec=state_spec_of(env),
    )
    recorder = EpisodeRecorder(env, store.append_episode, image_size=32)
    recorder.reset(seed=0)
    done = False
    while not done:
        *_, terminated, truncated, _ = recorder.step(np.zeros(7, np.float32))
        done = terminated or truncated
    store.finalize()
    ep = EpisodeStore.open(tmp_path / "s.zarr").load_episode(0)
    np.testing.assert_array_equal(ep["is_terminal"], [False, False, False, True])
    np.testing.assert_array_equal(ep["is_success"], [False, False, True, True])
    np.testing.assert_array_equal(ep["is_last"], ep["is_terminal"])
