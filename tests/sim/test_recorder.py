import gymnasium as gym
import numpy as np
import pytest

import cosmos_env  # noqa: F401
from cosmos_env.data import EpisodeStore
from cosmos_env.sim.recorder import EpisodeRecorder, action_spec_of, features_for


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
