"""WorldModelVectorEnv through ``gymnasium.make_vec``: batched spaces, seeding, the
NEXT_STEP and SAME_STEP autoreset modes and partial resets."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import cosmos_env  # noqa: F401  (registers the envs)
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.machine import has_cxx_compiler
from cosmos_env.sim.tasks import get_task

ENV_ID = "cosmos_env/WorldModel-Tabletop-Push-v0"
N = 3


# Tiny models: one thread avoids oversubscription when other jobs share the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def make(tiny_world_model_dir):
    envs = []

    def factory(num_envs=N, **kwargs):
        env = gym.make_vec(
            ENV_ID,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            checkpoint=str(tiny_world_model_dir),
            **kwargs,
        )
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def zeros(n=N):
    return np.zeros((n, 7), np.float32)


def in_pool(env, frame) -> bool:
    """Whether ``frame`` is one of the checkpoint's reset frames (the default reset source)."""
    return any(np.array_equal(frame, f) for f in env.unwrapped.core.wm.reset_frames)


def test_spaces_are_batched(make):
    env = make()
    assert isinstance(env, WorldModelVectorEnv) and env.num_envs == N
    assert env.single_action_space == gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    assert env.single_observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert env.action_space.shape == (N, 7) and env.observation_space.shape == (N, 64, 64, 3)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.max_episode_steps == get_task("push").max_episode_steps
    obs, info = env.reset(seed=0)
    assert obs.shape == (N, 64, 64, 3) and obs.dtype == np.uint8 and obs in env.observation_space
    assert info["state"].shape == (N, 36) and info["_state"].all()
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (N, 64, 64, 3) and obs in env.observation_space
    assert reward.shape == (N,) and reward.dtype == np.float64
    assert terminated.shape == truncated.shape == (N,) and terminated.dtype == np.bool_
    assert info["is_success"].shape == (N,) and info["state"].shape == (N, 36)
    np.testing.assert_array_equal(env.render(), obs)


def test_rewards_are_the_task_functions_of_each_state(make):
    task = get_task("push")
    env = make(terminate_on_success=False)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.random.default_rng(0).uniform(-1, 1, (N, 7)))
    np.testing.assert_array_equal(reward, task.reward(info["state"]))
    np.testing.assert_array_equal(info["is_success"], task.success(info["state"]))


def test_same_seed_same_frames(make):
    acts = np.random.default_rng(1).uniform(-1, 1, (2, N, 7)).astype(np.float32)

    def episode(env, seed):
        out = [env.reset(seed=seed)[0]]
        out += [env.step(a)[0] for a in acts]
        return np.stack(out)

    first = episode(make(), 7)
    np.testing.assert_array_equal(first, episode(make(), 7))
    env = make()
    episode(env, 8)
    np.testing.assert_array_equal(episode(env, 7), first)
    assert not np.array_equal(episode(make(), 8)[1:], first[1:])
    # A list of seeds is accepted too, and is reproducible.
    a, b = make(), make()
    np.testing.assert_array_equal(a.reset(seed=[1, 2, 3])[0], b.reset(seed=[1, 2, 3])[0])
    np.testing.assert_array_equal(a.step(acts[0])[0], b.step(acts[0])[0])


@pytest.mark.skipif(
    not has_cxx_compiler(), reason="torch.compile needs a C++ compiler (apt install g++)"
)
def test_a_compiled_env_steps_as_the_eager_one(make):
    acts = np.random.default_rng(2).uniform(-1, 1, (2, N, 7)).astype(np.float32)

    def episode(env):
        out = [env.reset(seed=3)[0]]
        out += [env.step(a)[0] for a in acts]
        return np.stack(out).astype(int)

    eager, compiled = episode(make()), episode(make(compile=True))
    # Fused kernels sum in another order (in bf16 where the CPU has it): frames differ by
    # a level or so here and there, far below what PSNR scores as a different frame.
    mse = np.mean((compiled - eager) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 40 and np.abs(compiled - eager).max() <= 8


def test_next_step_autoreset(make):
    env = make(max_episode_steps=3, terminate_on_success=False)
    env.reset(seed=0)
    for _ in range(2):
        _, _, terminated, truncated, _ = env.step(zeros())
        assert not terminated.any() and not truncated.any()
    last, reward, terminated, truncated, _ = env.step(zeros())
    assert truncated.all() and not terminated.any()
    assert not any(in_pool(env, f) for f in last)  # still the predicted frames
    obs, reward, terminated, truncated, info = env.step(zeros())  # the reset step
    assert all(in_pool(env, f) for f in obs)
    np.testing.assert_array_equal(reward, 0.0)
    assert not terminated.any() and not truncated.any()
    assert info["_state"].all()
    # A fresh episode of 3 steps follows.
    for k in range(3):
        _, _, _, truncated, _ = env.step(zeros())
        assert truncated.all() == (k == 2)


def test_next_step_resets_only_the_finished_sub_envs(make):
    """Sub-env 0 restarts one step later than the others, so their episodes end apart."""
    env = make(max_episode_steps=3, terminate_on_success=False)
    env.reset(seed=0)
    env.step(zeros())
    obs, info = env.reset(options={"reset_mask": np.array([True, False, False])})
    np.testing.assert_array_equal(info["_state"], [True, False, False])
    env.step(zeros())
    _, _, _, truncated, _ = env.step(zeros())  # others: step 3; sub-env 0: step 2
    np.testing.assert_array_equal(truncated, [False, True, True])
    obs, reward, terminated, truncated, _ = env.step(zeros())
    np.testing.assert_array_equal(truncated, [True, False, False])
    assert not terminated.any()
    assert reward[0] != 0.0 and (reward[1:] == 0.0).all()
    assert not in_pool(env, obs[0]) and in_pool(env, obs[1]) and in_pool(env, obs[2])
    obs, reward, _, truncated, _ = env.step(zeros())
    assert in_pool(env, obs[0]) and reward[0] == 0.0 and not truncated.any()
    assert not in_pool(env, obs[1]) and not in_pool(env, obs[2])


def test_same_step_autoreset_matches_next_step(make):
    """SAME_STEP returns on the truncating step what NEXT_STEP returns over two steps: the
    last frame (as ``final_obs``) and the reset frame (as the observation)."""
    kwargs = dict(max_episode_steps=3, terminate_on_success=False)
    nxt = make(**kwargs)
    same = make(**kwargs, autoreset_mode=AutoresetMode.SAME_STEP)
    assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    nxt.reset(seed=4)
    same.reset(seed=4)
    for _ in range(2):
        a, b = nxt.step(zeros()), same.step(zeros())
        np.testing.assert_array_equal(a[0], b[0])
        assert "final_obs" not in b[4]
    last, reward_n, _, truncated_n, info_n = nxt.step(zeros())
    obs, reward, terminated, truncated, info = same.step(zeros())
    np.testing.assert_array_equal(truncated, truncated_n)
    assert truncated.all() and not terminated.any()
    np.testing.assert_array_equal(reward, reward_n)  # the reward of the last step, not 0
    assert info["final_obs"].dtype == object and info["_final_obs"].all()
    np.testing.assert_array_equal(np.stack(list(info["final_obs"])), last)
    final_info = info["final_info"]
    np.testing.assert_array_equal(final_info["state"], info_n["state"])
    np.testing.assert_array_equal(final_info["is_success"], info_n["is_success"])
    assert info["_final_info"].all() and final_info["_state"].all()
    reset_obs = nxt.step(zeros())[0]
    np.testing.assert_array_equal(obs, reset_obs)
    assert all(in_pool(same, f) for f in obs)
    assert not np.array_equal(info["state"], final_info["state"])  # the new episode's state


def test_same_step_final_obs_marks_only_finished_sub_envs(make):
    env = make(max_episode_steps=2, terminate_on_success=False, autoreset_mode="SameStep")
    env.reset(seed=0)
    env.step(zeros())
    env.reset(options={"reset_mask": np.array([False, True, False])})
    _, _, _, truncated, info = env.step(zeros())
    np.testing.assert_array_equal(truncated, [True, False, True])
    np.testing.assert_array_equal(info["_final_obs"], truncated)
    assert info["final_obs"][1] is None and info["final_obs"][0].shape == (64, 64, 3)
    np.testing.assert_array_equal(info["_final_info"], truncated)


def test_reset_mask_resets_only_masked_sub_envs(make):
    env = make()
    env.reset(seed=0)
    stepped, *_ = env.step(zeros())
    mask = np.array([False, True, False])
    obs, info = env.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[~mask], stepped[~mask])
    assert in_pool(env, obs[1]) and not in_pool(env, stepped[1])
    np.testing.assert_array_equal(info["_state"], mask)
    frame = np.full((1, 64, 64, 3), 17, np.uint8)
    obs, _ = env.reset(options={"reset_mask": mask, "frames": frame})
    np.testing.assert_array_equal(obs[1], frame[0])
    np.testing.assert_array_equal(obs[~mask], stepped[~mask])
    assert env.step(zeros())[0].shape == (N, 64, 64, 3)


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.array([True, False]), r"bool array of shape \(3,\)"),
        (np.array([1, 0, 0]), r"bool array of shape \(3,\)"),
        (np.zeros(3, bool), "selects no sub-env"),
    ],
)
def test_bad_reset_mask_is_refused(make, mask, match):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"reset_mask": mask})


def test_reset_with_frames_and_reset_errors(make):
    env = make()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(zeros())
    with pytest.raises(RuntimeError, match="first reset must start every sub-env"):
        env.reset(seed=0, options={"reset_mask": np.array([True, False, False])})
    frames = np.random.default_rng(0).integers(0, 256, (N, 64, 64, 3), dtype=np.uint8)
    obs, _ = env.reset(seed=0, options={"frames": frames})
    np.testing.assert_array_equal(obs, frames)
    with pytest.raises(ValueError, match=r"expected \(3, 64, 64, 3\)"):
        env.reset(options={"frames": frames[:2]})
    with pytest.raises(ValueError, match=r"shape \(7,\), expected \(3, 7\)"):
        env.step(np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((N, 7), np.nan, np.float32))


def test_constructor_errors(tiny_world_model_dir):
    with pytest.raises(ValueError, match="num_envs"):
        WorldModelVectorEnv(num_envs=0, checkpoint=str(tiny_world_model_dir))
    with pytest.raises(ValueError, match="NEXT_STEP or SAME_STEP"):
        WorldModelVectorEnv(checkpoint=str(tiny_world_model_dir), autoreset_mode="Disabled")
