"""WorldModelEnv on a tiny random world model: Gymnasium and SB3 contracts, seeding,
rewards from the task functions, reset sources and input errors."""

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import cosmos_env  # noqa: F401  (registers the envs)
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.sim.tasks import get_task
from cosmos_env.tokenizer.release import encode_frames

ENV_ID = "cosmos_env/WorldModel-Tabletop-Push-v0"


# Tiny models: one thread avoids oversubscription when other jobs share the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def make(open_envs, tiny_world_model_dir):
    return functools.partial(open_envs, tiny_world_model_dir)


def actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 7)).astype(np.float32)


def run(env, seed: int, acts: np.ndarray):
    obs, info = env.reset(seed=seed)
    frames, rewards, states = [obs], [], [info["state"]]
    for a in acts:
        obs, reward, _, _, info = env.step(a)
        frames.append(obs)
        rewards.append(reward)
        states.append(info["state"])
    return np.stack(frames), np.array(rewards), np.stack(states)


def test_gymnasium_and_sb3_checkers_pass(make):
    env = make()
    assert isinstance(env.unwrapped, WorldModelEnv)
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)


def test_spaces_match_the_mujoco_env(make):
    env = make()
    mujoco = gym.make("cosmos_env/Tabletop-Push-v0")
    assert env.action_space == mujoco.action_space
    assert env.observation_space == mujoco.observation_space
    assert env.spec.max_episode_steps == get_task("push").max_episode_steps
    mujoco.close()


def test_same_seed_and_actions_give_the_same_episode(make):
    acts = actions(4)
    frames, rewards, states = run(make(), 3, acts)
    frames2, rewards2, states2 = run(make(), 3, acts)
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, frames2)
    np.testing.assert_array_equal(rewards, rewards2)
    np.testing.assert_array_equal(states, states2)
    # Reseeding the same env replays the episode too.
    env = make()
    run(env, 5, acts)
    np.testing.assert_array_equal(run(env, 3, acts)[0], frames)
    other, _, _ = run(make(), 4, acts)
    assert not np.array_equal(other[1:], frames[1:])


def test_predictions_change_the_frame_and_depend_on_actions(make):
    env = make()
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(np.zeros(7, np.float32))
    assert not np.array_equal(obs0, obs1)
    env.reset(seed=0)
    obs1b, *_ = env.step(np.ones(7, np.float32))
    assert not np.array_equal(obs1, obs1b)


def test_reward_and_success_are_the_task_functions_of_the_state(make):
    task = get_task("push")
    for sparse in (False, True):
        env = make(sparse_reward=sparse, terminate_on_success=False)
        obs, info = env.reset(seed=1)
        assert info["state"].shape == (36,) and info["state"].dtype == np.float64
        for a in actions(3, seed=2):
            obs, reward, terminated, truncated, info = env.step(a)
            assert isinstance(reward, float) and not terminated and not truncated
            assert reward == float(task.reward(info["state"], sparse=sparse))
            assert info["is_success"] == bool(task.success(info["state"]))
            np.testing.assert_array_equal(obs, env.render())


def test_success_terminates_when_asked(make, monkeypatch):
    from cosmos_env.envs.core import WorldModelCore

    monkeypatch.setattr(WorldModelCore, "success", lambda self: np.ones(self.num_envs, bool))
    env = make()
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert terminated and not truncated and info["is_success"]
    env = make(terminate_on_success=False)
    env.reset(seed=0)
    assert env.step(np.zeros(7, np.float32))[2] is False


@pytest.mark.parametrize(
    "action, match",
    [
        (np.zeros(6, np.float32), r"shape \(6,\), expected \(7,\)"),
        (np.zeros((1, 7), np.float32), r"expected \(7,\)"),
        (np.zeros(7, np.int64), "dtype int64, expected a float"),
        (np.array([np.nan] + [0.0] * 6, np.float32), "NaN"),
        (np.array([np.inf] + [0.0] * 6), "NaN or inf"),
    ],
)
def test_bad_actions_are_refused(make, action, match):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_out_of_range_actions_are_clipped(make):
    env = make()
    env.reset(seed=0)
    big, *_ = env.step(np.full(7, 5.0))  # float64 is accepted and clipped
    env.reset(seed=0)
    one, *_ = env.step(np.ones(7, np.float32))
    np.testing.assert_array_equal(big, one)


def test_step_and_render_before_reset_are_refused(tiny_world_model_dir):
    env = WorldModelEnv(checkpoint=str(tiny_world_model_dir))
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(7, np.float32))
    with pytest.raises(RuntimeError, match="before reset"):
        env.render()
    assert WorldModelEnv(checkpoint=str(tiny_world_model_dir), render_mode=None).render() is None
    with pytest.raises(ValueError, match="render_mode"):
        WorldModelEnv(checkpoint=str(tiny_world_model_dir), render_mode="human")


def test_reset_from_given_frames(make):
    env = make()
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    obs, info = env.reset(seed=0, options={"frames": frame})
    np.testing.assert_array_equal(obs, frame)
    assert info["state"].shape == (36,)
    # Several frames, oldest first: the observation is the newest.
    clip = np.stack([frame, 255 - frame])
    obs, _ = env.reset(seed=0, options={"frames": clip})
    np.testing.assert_array_equal(obs, 255 - frame)
    assert env.step(np.zeros(7, np.float32))[0].shape == (64, 64, 3)


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((32, 32, 3), np.uint8), r"expected \(1, 64, 64, 3\)"),
        (np.zeros((64, 64), np.uint8), r"expected \(1, 64, 64, 3\)"),
        (np.zeros((5, 64, 64, 3), np.uint8), "5 frames per env, expected"),
        (np.zeros((64, 64, 3), np.float32), "dtype float32, expected uint8"),
    ],
)
def test_bad_reset_frames_are_refused(make, frames, match):
    env = make()
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options={"frames": frames})


def test_reset_source_frames_needs_frames(make):
    env = make(reset_source="frames")
    with pytest.raises(ValueError, match=r"reset_source='frames' needs .*\(1, 64, 64, 3\)"):
        env.reset(seed=0)
    frame = np.full((64, 64, 3), 9, np.uint8)
    np.testing.assert_array_equal(env.reset(options={"frames": frame})[0], frame)
    with pytest.raises(ValueError, match="reset_source 'video' unknown"):
        make(reset_source="video")


def test_store_reset_starts_from_the_shipped_frames(make):
    env = make()
    pool = env.unwrapped.core.wm.reset_frames
    starts = [env.reset(seed=s)[0] for s in range(6)]
    assert all(any(np.array_equal(obs, f) for f in pool) for obs in starts)


def test_mujoco_reset_source(make):
    env = make(reset_source="mujoco")
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert obs.std() > 0  # a rendered scene, not a blank frame
    np.testing.assert_array_equal(obs, env.reset(seed=0)[0])
    assert env.step(np.zeros(7, np.float32))[0].shape == (64, 64, 3)


def test_time_limit_truncates(make):
    env = make(max_episode_steps=3, terminate_on_success=False)
    env.reset(seed=0)
    flags = [env.step(np.zeros(7, np.float32))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_store_and_mujoco_resets_start_the_state_track_from_the_true_state(make):
    env = make()
    obs, info = env.reset(seed=3)
    wm = env.unwrapped.core.wm
    row = next(i for i, f in enumerate(wm.reset_frames) if np.array_equal(obs, f))
    np.testing.assert_allclose(info["state"], wm.reset_states[row], atol=1e-6)
    for source in ("mujoco", "sim"):  # "mujoco" is the old name of "sim"
        live = make(reset_source=source)
        obs, info = live.reset(seed=0)
        world = live.unwrapped.core.world  # the same live reset, seeded as the env does
        seed = int(np.random.default_rng(live.unwrapped.np_random_seed).integers(2**31))
        frame, true_state = world.reset(seed, 64)
        np.testing.assert_allclose(info["state"], true_state, atol=1e-6)
        np.testing.assert_array_equal(obs, frame)


def test_the_state_track_steps_with_the_learned_state_dynamics(make):
    env = make()
    _, info = env.reset(seed=0)
    action = actions(1)[0]
    _, _, _, _, after = env.step(action)
    core = env.unwrapped.core
    ctx = np.repeat(info["state"][None, None], core.wm.dynamics.cfg.context, axis=1)
    acts = np.zeros((1, core.wm.dynamics.cfg.context, 7), np.float32)
    acts[0, -1] = action
    expected = core.wm.dynamics.predict_next_state(
        torch.from_numpy(ctx).float(), torch.from_numpy(acts)
    )
    np.testing.assert_allclose(after["state"], expected[0].numpy(), atol=2e-2)


def test_reset_with_frames_and_their_states(make):
    env = make()
    frame = np.full((64, 64, 3), 40, np.uint8)
    state = np.linspace(-0.2, 0.2, 36).astype(np.float32)
    _, info = env.reset(seed=0, options={"frames": frame, "states": state[None]})
    np.testing.assert_allclose(info["state"], state, atol=1e-6)
    _, probed = env.reset(seed=0, options={"frames": frame})  # no states: the probe reads them
    expected = env.unwrapped.core.wm.dynamics.predict_state(
        encode_frames(env.unwrapped.core.wm.tokenizer, torch.from_numpy(frame[None]))
    )
    np.testing.assert_allclose(probed["state"], expected[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="reset states have shape"):
        env.reset(seed=0, options={"frames": frame, "states": state[None, :5]})
    with pytest.raises(ValueError, match="NaN"):
        env.reset(seed=0, options={"frames": frame, "states": np.full((1, 36), np.nan)})
    with pytest.raises(ValueError, match="without 'frames'"):
        env.reset(seed=0, options={"states": state[None]})


def test_models_without_a_state_track_report_the_probe_state(tiny_probe_world_model_dir):
    env = gym.make(ENV_ID, checkpoint=str(tiny_probe_world_model_dir))
    env.reset(seed=0)
    _, _, _, _, info = env.step(actions(1)[0])
    core = env.unwrapped.core
    assert core.context.states is None
    expected = core.wm.dynamics.predict_state(core.context.latents[:, -1].float())
    np.testing.assert_allclose(info["state"], expected[0].numpy(), atol=5e-2)
    env.close()


def test_non_finite_predictions_raise_naming_the_checkpoint(tiny_world_model_dir, tmp_path):
    from cosmos_env.checkpoint import CheckpointError
    from cosmos_env.dynamics.release import load_world_model, save_world_model

    wm = load_world_model(tiny_world_model_dir)  # a fresh copy, not the envs' shared one
    with torch.no_grad():  # weights as a diverged run (or an old, corrupt file) leaves them
        for p in wm.dynamics.parameters():
            p.fill_(float("nan"))
    directory = save_world_model(
        tmp_path / "nan", wm.dynamics, wm.tokenizer, wm.world, "euler", 1,
        wm.reset_frames, wm.reset_states,
    )  # fmt: skip
    envs = [
        gym.make(ENV_ID, checkpoint=str(directory)),
        gym.make_vec(ENV_ID, 2, vectorization_mode="vector_entry_point", checkpoint=str(directory)),
    ]
    for env, action in zip(envs, (actions(1)[0], actions(2)), strict=True):
        env.reset(seed=0)
        with pytest.raises(CheckpointError, match="non-finite latent") as err:
            env.step(action)
        assert str(directory) in str(err.value) and "Re-download" in str(err.value)
        env.close()
