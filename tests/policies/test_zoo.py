"""The policy protocol and the zoo: random, scripted, CEM-MPC, and the spec registry."""

import numpy as np
import pytest
import torch

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.sim.experts import push_expert
from cosmos_env.sim.tabletop_env import TabletopEnv
from policies.base import Policy, RandomPolicy
from policies.cem import CEMPolicy, StateTrackImagination
from policies.scripted import ScriptedPolicy
from policies.zoo import KINDS, make_policy

FRAMES = np.zeros((3, 64, 64, 3), np.uint8)


@pytest.fixture(scope="module")
def true_states():
    env = TabletopEnv("push")
    states = np.stack([env.reset(seed=s)[1]["state"] for s in range(3)])
    env.close()
    return states


def test_random_policy_is_seeded_and_in_range():
    policy = RandomPolicy()
    policy.reset(seed=3, num_envs=3)
    first = policy.act_batch(FRAMES)
    policy.reset(seed=3, num_envs=3)
    assert np.array_equal(first, policy.act_batch(FRAMES))
    assert first.shape == (3, 7) and first.dtype == np.float32
    assert np.abs(first).max() <= 1.0
    assert policy.act(FRAMES[0]).shape == (7,)
    assert isinstance(policy, Policy)


def test_scripted_policy_is_the_expert_row_by_row(true_states):
    policy = ScriptedPolicy("push", noise=0.0)
    actions = policy.act_batch(FRAMES, {"state": true_states})
    expected = np.stack([np.clip(push_expert(s), -1, 1) for s in true_states])
    np.testing.assert_allclose(actions, expected, atol=1e-6)
    single = policy.act(FRAMES[0], {"state": true_states[0]})
    np.testing.assert_allclose(single, expected[0], atol=1e-6)


def test_scripted_noise_does_not_depend_on_the_state(true_states):
    """Two worlds with different states draw the same random numbers, so a noisy policy
    replaces the same steps with random actions in both."""
    policy = ScriptedPolicy("push", noise=0.5)
    draws = []
    for states in (true_states, true_states + 0.05):
        policy.reset(seed=1, num_envs=3)
        actions = [policy.act_batch(FRAMES, {"state": states}) for _ in range(20)]
        draws.append((policy.rng.bit_generator.state["state"], np.stack(actions)))
    assert draws[0][0] == draws[1][0]
    uniform_steps = np.all(draws[0][1] == draws[1][1], axis=-1)  # replaced in both worlds
    assert 0 < uniform_steps.mean() < 1
    with pytest.raises(ValueError, match="noise must be in"):
        ScriptedPolicy("push", noise=1.5)


def test_privileged_policies_name_the_missing_state():
    with pytest.raises(ValueError, match=r"info\['state'\]"):
        ScriptedPolicy("push").act_batch(FRAMES, None)
    with pytest.raises(ValueError, match="2 rows for 3 observations"):
        ScriptedPolicy("push").act_batch(FRAMES, {"state": np.zeros((2, 36))})


def test_imagined_returns_are_the_vector_envs_rewards(tiny_world_model_dir, true_states):
    """The planner imagines with the state track alone; the env's reward reads only that
    track, so the two agree for the same actions."""
    wm = load_world_model(tiny_world_model_dir)
    plan = np.random.default_rng(0).uniform(-1, 1, (3, 4, 7)).astype(np.float32)
    env = WorldModelVectorEnv(3, world_model=wm, reset_source="frames")
    env.reset(seed=0, options={"frames": FRAMES, "states": true_states})
    total = np.zeros(3)
    for t in range(4):
        total += env.step(plan[:, t])[1]
    env.close()
    imagination = StateTrackImagination(wm)
    k = wm.dynamics.cfg.context
    context = np.repeat(true_states[:, None], k, axis=1)
    returns = imagination.returns(context, np.zeros((3, k - 1, 7)), plan[:, None])
    np.testing.assert_allclose(returns[:, 0], total, rtol=1e-4, atol=1e-4)


def test_cem_is_deterministic_under_its_seed(tiny_world_model_dir, true_states):
    wm = load_world_model(tiny_world_model_dir)
    policy = CEMPolicy("push", wm, horizon=3, population=16, elites=4, iterations=2)
    runs = []
    for _ in range(2):
        policy.reset(seed=5, num_envs=3)
        runs.append([policy.act_batch(FRAMES, {"state": true_states}) for _ in range(2)])
    np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))
    assert runs[0][0].shape == (3, 7) and np.abs(runs[0][0]).max() <= 1.0


def test_cem_fixed_dims_and_bad_settings(tiny_world_model_dir, true_states):
    wm = load_world_model(tiny_world_model_dir)
    policy = CEMPolicy("push", wm, horizon=2, population=8, elites=2, fixed={6: -1.0})
    policy.reset(seed=0, num_envs=3)
    assert np.all(policy.act_batch(FRAMES, {"state": true_states})[:, 6] == -1.0)
    with pytest.raises(ValueError, match="elites <= population"):
        CEMPolicy("push", wm, population=4, elites=8)


def test_cem_refuses_a_model_without_a_state_track(tiny_ar_world_model_dir):
    with pytest.raises(ValueError, match="no state track"):
        CEMPolicy("push", load_world_model(tiny_ar_world_model_dir))


def test_cem_improves_on_its_own_model(tiny_world_model_dir, true_states):
    """On the model it plans in, CEM's first action scores at least as well as random."""
    torch.manual_seed(0)
    wm = load_world_model(tiny_world_model_dir)
    imagination = StateTrackImagination(wm)
    policy = CEMPolicy("push", wm, horizon=3, population=64, elites=8, iterations=3)
    policy.reset(seed=0, num_envs=3)
    policy.act_batch(FRAMES, {"state": true_states})
    k = wm.dynamics.cfg.context
    context = np.repeat(true_states[:, None], k, axis=1)
    zero = np.zeros((3, k - 1, 7))
    planned = np.concatenate([policy._actions[:, -1:], policy._plan[:, :2]], axis=1)
    random = np.random.default_rng(1).uniform(-1, 1, (3, 32, 3, 7))
    best = imagination.returns(context, zero, planned[:, None])[:, 0]
    assert np.all(best >= np.median(imagination.returns(context, zero, random), axis=1))


def test_zoo_builds_every_kind_and_names_bad_specs(tiny_world_model_dir):
    wm = load_world_model(tiny_world_model_dir)
    assert make_policy({"kind": "scripted", "noise": 0.25}).name == "scripted-0.25"
    assert make_policy({"kind": "random", "name": "uniform"}).name == "uniform"
    assert make_policy({"kind": "cem", "horizon": 2}, world_model=wm).name == "cem-mpc"
    assert set(KINDS) >= {"random", "scripted", "bc", "cem", "ppo"}
    with pytest.raises(ValueError, match="unknown policy kind 'expert'"):
        make_policy({"kind": "expert"})
    with pytest.raises(ValueError, match=r"unknown keys \['nois'\]"):
        make_policy({"kind": "scripted", "nois": 0.1})
    with pytest.raises(ValueError, match="needs checkpoint=PATH"):
        make_policy({"kind": "bc"})


def test_ppo_trains_in_the_world_model_and_acts_in_mujoco(tiny_world_model_dir, tmp_path):
    pytest.importorskip("stable_baselines3")
    from policies.ppo import train_ppo

    summary = train_ppo(
        64, tmp_path / "ppo", num_envs=2, checkpoint=str(tiny_world_model_dir), n_steps=32
    )
    assert summary["steps"] >= 64
    assert {"model.safetensors", "config.json", "card.md"} <= {
        p.name for p in (tmp_path / "ppo").iterdir()
    }  # a release, not a pickled .zip
    policy = make_policy({"kind": "ppo", "checkpoint": str(tmp_path / "ppo")})
    env = TabletopEnv("push")
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    env.close()
    assert action.shape == (7,) and action.dtype == np.float32 and np.abs(action).max() <= 1
    batch = policy.act_batch(np.stack([obs, obs]))
    np.testing.assert_array_equal(batch[0], batch[1])  # deterministic
    with pytest.raises(FileNotFoundError, match="no PPO model"):
        make_policy({"kind": "ppo", "checkpoint": str(tmp_path / "missing.zip")})
