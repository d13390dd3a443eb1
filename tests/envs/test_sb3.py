"""The Stable-Baselines3 adapter: SB3's VecEnv contract on the world-model vector env, and a
real SB3 algorithm training on it."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from cosmos_env.envs.sb3 import SB3VecEnvAdapter, infos_to_list, make_sb3_vec_env
from cosmos_env.envs.vector_env import WorldModelVectorEnv


@pytest.fixture
def venv(tiny_world_model_dir):
    env = make_sb3_vec_env(
        num_envs=3,
        checkpoint=str(tiny_world_model_dir),
        max_episode_steps=3,
        terminate_on_success=False,
    )
    yield env
    env.close()


def _in_pool(frame, pool) -> bool:
    return any(np.array_equal(frame, f) for f in pool)


def test_reset_step_shapes_and_time_limit(venv):
    pool = venv.venv.unwrapped.core.wm.reset_frames
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    assert venv.observation_space.shape == (64, 64, 3) and venv.action_space.shape == (7,)
    assert all(_in_pool(o, pool) for o in obs)
    assert all(info["state"].shape == (36,) for info in venv.reset_infos)
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 3, 7)).astype(np.float32)
    for t in range(6):
        obs, rewards, dones, infos = venv.step(actions[t])
        assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
        assert rewards.shape == (3,) and rewards.dtype == np.float32
        assert dones.shape == (3,) and dones.dtype == np.bool_
        assert len(infos) == 3 and all("is_success" in info for info in infos)
        last = t % 3 == 2
        assert dones.all() == last and dones.any() == last
        for i, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is last
            assert ("terminal_observation" in info) is last
            if last:
                terminal = info["terminal_observation"]
                assert terminal.shape == (64, 64, 3) and terminal.dtype == np.uint8
                assert not _in_pool(terminal, pool)  # a predicted frame
                assert _in_pool(obs[i], pool)  # the returned obs starts the next episode
                assert venv.reset_infos[i]["state"].shape == (36,)
            else:
                assert not _in_pool(obs[i], pool)


def test_seeded_reset_is_reproducible(venv):
    venv.seed(123)
    first = venv.reset()
    first_step = venv.step(np.zeros((3, 7), np.float32))[0]
    venv.seed(123)
    np.testing.assert_array_equal(venv.reset(), first)
    np.testing.assert_array_equal(venv.step(np.zeros((3, 7), np.float32))[0], first_step)


def test_reset_options_reach_the_vector_env(venv):
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    venv.set_options({"frames": frames})
    np.testing.assert_array_equal(venv.reset(), frames)
    venv.set_options([{"frames": frames}, {}, {}])
    with pytest.raises(ValueError, match="one options dict"):
        venv.reset()


def test_attrs_methods_and_render(venv):
    venv.reset()
    assert venv.get_attr("render_mode") == ["rgb_array"] * 3
    assert venv.get_attr("max_episode_steps", indices=[1]) == [3]
    venv.set_attr("terminate_on_success", True)
    assert venv.venv.unwrapped.terminate_on_success is True
    with pytest.raises(ValueError, match="indices must cover all"):
        venv.set_attr("terminate_on_success", False, indices=[0])
    frames = venv.env_method("render")
    assert len(frames) == 3 and frames[0].shape == (3, 64, 64, 3)
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * 3
    assert [im.shape for im in venv.get_images()] == [(64, 64, 3)] * 3
    assert venv.render().shape == (128, 128, 3)  # SB3 tiles 3 frames on a 2x2 grid
    with pytest.raises(AttributeError, match="no_such_attr"):
        venv.get_attr("no_such_attr")


def test_next_step_world_model_env_is_switched_to_same_step(tiny_world_model_dir):
    env = WorldModelVectorEnv(num_envs=2, checkpoint=str(tiny_world_model_dir))
    assert env.autoreset_mode == AutoresetMode.NEXT_STEP
    adapter = SB3VecEnvAdapter(env)
    assert env.autoreset_mode == AutoresetMode.SAME_STEP
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    adapter.close()


def test_other_vector_envs_need_same_step():
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnvAdapter(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    with pytest.raises(TypeError, match="VectorEnv"):
        SB3VecEnvAdapter(gym.make("CartPole-v1"))


def test_generic_sync_vector_env():
    venv = SB3VecEnvAdapter(
        gym.make_vec(
            "CartPole-v1",
            2,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    )
    venv.seed(0)
    venv.reset()
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [True, True]
    for _ in range(200):
        obs, _, dones, infos = venv.step(np.ones(2, np.int64))  # always push right: falls
        if dones.any():
            break
    i = int(np.flatnonzero(dones)[0])
    assert infos[i]["terminal_observation"].shape == (4,)
    assert infos[i]["TimeLimit.truncated"] is False
    assert not np.array_equal(obs[i], infos[i]["terminal_observation"])
    venv.close()


def test_infos_to_list_respects_masks():
    infos = {"a": np.arange(3), "_a": np.array([True, False, True]), "b": np.zeros(3)}
    infos["final_info"] = {"c": np.ones(3), "_c": np.array([False, True, False])}
    infos["_final_info"] = np.array([False, True, False])
    out = infos_to_list(infos, 3)
    assert out[0] == {"a": 0, "b": 0.0}
    assert out[1] == {"b": 0.0, "final_info": {"c": 1.0}}
    assert "final_info" not in out[2] and out[2]["a"] == 2


def test_ppo_trains_and_predicts(tiny_world_model_dir):
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecMonitor

    adapter = make_sb3_vec_env(
        num_envs=2,
        checkpoint=str(tiny_world_model_dir),
        max_episode_steps=3,
        terminate_on_success=False,
    )
    model = PPO(
        "CnnPolicy",
        VecMonitor(adapter),
        n_steps=8,
        batch_size=8,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # no folder under /tmp
    model.learn(16)
    assert model.num_timesteps == 16
    assert len(model.ep_info_buffer) >= 4 and all(ep["l"] == 3 for ep in model.ep_info_buffer)
    assert len(model.ep_success_buffer) >= 4  # read from infos["is_success"] at episode ends
    actions, _ = model.predict(adapter.reset())
    assert actions.shape == (2, 7)
    assert all(adapter.action_space.contains(a.astype(np.float32)) for a in actions)
    adapter.close()
