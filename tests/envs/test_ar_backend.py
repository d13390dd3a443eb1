"""The autoregressive backend behind the same envs: the env contracts (Gymnasium and SB3
checkers, seeding, bad input), backend selection, token-space resets and the shared state
track, on tiny random AR world models."""

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import cosmos_env  # noqa: F401  (registers the envs)
from cosmos_env.dynamics.release import default_checkpoint, load_world_model
from cosmos_env.envs.vector_env import WorldModelVectorEnv

ENV_ID = "cosmos_env/WorldModel-Tabletop-Push-v0"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def make(open_envs, tiny_ar_world_model_dir):
    return functools.partial(open_envs, tiny_ar_world_model_dir)


def actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 7)).astype(np.float32)


def test_checkers_pass_on_the_ar_backend(make):
    gym_check_env(make().unwrapped, skip_render_check=False)
    sb3_check_env(make().unwrapped, warn=True)


def test_ar_world_model_loads_as_a_token_model(tiny_ar_world_model_dir):
    wm = load_world_model(tiny_ar_world_model_dir)
    assert wm.discrete and wm.sampler == "parallel" and wm.sampler_steps == 2
    frames = torch.from_numpy(wm.reset_frames[:2])
    tokens = wm.encode(frames)
    assert tokens.shape == (2, 8, 8) and tokens.dtype == torch.int64
    assert int(tokens.max()) < 12  # the tiny tokenizer's 4 x 3 vocabulary
    assert wm.decode(tokens).shape == (2, 64, 64, 3)


def test_same_seed_same_frames_and_the_seed_matters(make):
    env = make(terminate_on_success=False)

    def episode(seed):
        obs = [env.reset(seed=seed)[0]]
        obs += [env.step(a)[0] for a in actions(3)]
        return np.stack(obs)

    first = episode(5)
    np.testing.assert_array_equal(first, episode(5))
    assert not np.array_equal(first[1:], episode(6)[1:])


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_both_decoders_step_the_env(make, sampler):
    env = make(sampler=sampler, sampler_steps=2, terminate_on_success=False)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(actions(1)[0])
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (36,) and np.isfinite(reward)


def test_bad_input_is_refused(make):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(7, np.nan, np.float32))
    with pytest.raises(ValueError, match="reset frames have shape"):
        env.reset(options={"frames": np.zeros((32, 32, 3), np.uint8)})


def test_backend_selects_the_checkpoint_kind(tiny_ar_world_model_dir, tiny_world_model_dir):
    assert default_checkpoint("ar", "tabletop-push") == "ar-push"
    assert default_checkpoint("diffusion", "tabletop-push") == "diffusion-push"
    with pytest.raises(ValueError, match="no shipped world model of world 'gym:Nowhere-v0'"):
        default_checkpoint("diffusion", "gym:Nowhere-v0")
    with pytest.raises(ValueError, match="backend 'video' unknown"):
        default_checkpoint("video", "tabletop-push")
    env = gym.make(ENV_ID, checkpoint=str(tiny_ar_world_model_dir), backend="ar")
    assert env.unwrapped.core.wm.discrete
    env.close()
    with pytest.raises(ValueError, match="compile=True is for the diffusion backend"):
        gym.make(ENV_ID, checkpoint=str(tiny_ar_world_model_dir), compile=True)
    with pytest.raises(ValueError, match="is a diffusion model"):
        gym.make(ENV_ID, checkpoint=str(tiny_world_model_dir), backend="ar")


def test_vector_env_on_the_ar_backend_resets_rows_independently(tiny_ar_world_model_dir):
    env = WorldModelVectorEnv(num_envs=3, checkpoint=str(tiny_ar_world_model_dir))
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(actions(3))
    frame = np.full((64, 64, 3), 80, np.uint8)
    mask = np.array([False, True, False])
    assert env.core.context.memory.cache is not None  # the KV cache, kept between steps
    after, _ = env.reset(options={"reset_mask": mask, "frames": frame[None]})
    np.testing.assert_array_equal(after[0], obs[0])
    np.testing.assert_array_equal(after[1], frame)
    assert env.core.context.memory.stale.tolist() == [1]  # prefilled anew at the next step
    assert env.step(actions(3, seed=1))[0].shape == (3, 64, 64, 3)
    assert env.core.context.memory.stale is None
    env.close()


def test_the_shipped_ar_model_is_the_default_of_backend_ar():
    env = gym.make(ENV_ID, backend="ar")
    try:
        core = env.unwrapped.core
        assert core.wm.source.name == "ar-push" and core.wm.discrete
        assert core.wm.dynamics.cfg.temperature == 0.0  # argmax decoding: see its card
        assert core.sampler == "parallel" and core.sampler_steps == 1  # one pass scored as 8
        assert core.wm.dynamics.state_dynamics is not None  # reward and success on its track
        gym_check_env(env.unwrapped)
        first, _ = env.reset(seed=3)
        frames = [env.step(a)[0] for a in actions(2)]
        # A trained model keeps the scene: the next frame stays close to the reset frame.
        diff = np.abs(frames[0].astype(np.float32) - first.astype(np.float32)).mean()
        assert diff < 12.0
        env.reset(seed=3)
        again = [env.step(a)[0] for a in actions(2)]
        assert all(np.array_equal(f, g) for f, g in zip(frames, again, strict=True))
    finally:
        env.close()


@pytest.fixture
def make_tracked(open_envs, tiny_ar_track_world_model_dir):
    return functools.partial(open_envs, tiny_ar_track_world_model_dir)


def test_checkers_pass_on_an_ar_model_with_a_state_track(make_tracked):
    gym_check_env(make_tracked().unwrapped, skip_render_check=False)
    sb3_check_env(make_tracked().unwrapped, warn=True)


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_the_ar_env_steps_its_state_with_the_track(make_tracked, sampler):
    env = make_tracked(sampler=sampler, sampler_steps=2, terminate_on_success=False)
    _, info = env.reset(seed=0)
    action = actions(1)[0]
    obs, _, _, _, after = env.step(action)
    dynamics = env.unwrapped.core.wm.dynamics
    k = dynamics.cfg.context
    ctx = torch.from_numpy(np.repeat(info["state"][None, None], k, axis=1)).float()
    acts = torch.zeros(1, k, 7)
    acts[0, -1] = torch.from_numpy(action)
    expected = dynamics.predict_next_state(ctx, acts)[0].numpy()
    np.testing.assert_allclose(after["state"], expected, atol=1e-4)
    # the probe would read a different state off the decoded frame
    tokens = env.unwrapped.core.wm.encode(torch.from_numpy(obs[None]))
    assert not np.allclose(dynamics.predict_state(tokens)[0].numpy(), expected, atol=1e-3)
