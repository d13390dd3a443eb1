import os
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException

from cosmos_env.config import GenerateConfig, SynthesizeConfig, load_config
from cosmos_env.data import EpisodeStore, StoreError
from cosmos_env.data.world import load_world
from cosmos_env.generate import episode_seed, generate
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.tasks import get_task
from cosmos_env.sim.worlds import gym_mujoco_world


def _cfg(tmp_path, *extra: str, **overrides) -> GenerateConfig:
    args = [f"out={tmp_path / 'push.zarr'}", "episodes=3", "workers=1", "max_steps=8"]
    return load_config(
        "generate", GenerateConfig, args + [f"{k}={v}" for k, v in overrides.items()] + [*extra]
    )


def test_overrides_compose_into_typed_config(tmp_path):
    cfg = _cfg(tmp_path, noise=0.3, task="pick_place")
    assert cfg.noise == 0.3 and cfg.task == "pick_place" and cfg.world.name == "tabletop"
    gym_cfg = load_config("generate", GenerateConfig, ["world=gym", "env_id=Pusher-v5"])
    assert gym_cfg.world.name == "gym" and gym_cfg.env_id == "Pusher-v5"
    assert cfg.executor == "local" and _cfg(tmp_path, executor="ray").executor == "ray"
    synth = load_config("synthesize", SynthesizeConfig, ["executor=ray"])  # shares the key
    assert synth.executor == "ray"


def test_unknown_override_fails_loudly():
    with pytest.raises(ConfigCompositionException, match="epsiodes"):
        load_config("generate", GenerateConfig, ["epsiodes=3"])


def test_generate_writes_a_complete_store_with_consistent_rows(tmp_path):
    summary = generate(_cfg(tmp_path))
    store = EpisodeStore.open(summary["out"])
    assert store.n_episodes == 3 and store.n_frames == 3 * 9
    assert store.attrs["extra"]["generate"]["task"] == "push"
    assert store.fps == 5.0 and store.world == "tabletop-push"
    ep = store.load_episode(0)
    # Reward of each row is the task's reward of that row's state (0 on the first row).
    expected = get_task("push").reward(ep["state"][1:])
    np.testing.assert_allclose(ep["reward"][1:], expected, rtol=1e-5, atol=1e-6)
    assert store.instruction(0) == get_task("push").instruction
    assert sl.get(ep["state"], "cube_present")[0, 0] == 1.0
    assert summary["bytes_per_frame"] < summary["raw_bytes_per_frame"]


def test_generate_is_deterministic_across_worker_counts(tmp_path):
    a = generate(_cfg(tmp_path / "a"))
    b = generate(_cfg(tmp_path / "b", workers=2))
    sa, sb = EpisodeStore.open(a["out"]), EpisodeStore.open(b["out"])
    for i in range(3):
        ea, eb = sa.load_episode(i), sb.load_episode(i)
        for key in ("rgb", "state", "action"):
            np.testing.assert_array_equal(ea[key], eb[key])


def test_generate_refuses_to_overwrite_and_resumes_unfinished(tmp_path):
    cfg = _cfg(tmp_path)
    generate(cfg)
    with pytest.raises(StoreError, match="overwrite=true"):
        generate(cfg)
    # Simulate an interrupted run: reopen for appending but drop the last episode's commit.
    reference = EpisodeStore.open(cfg.out).load_episode(2)
    store = EpisodeStore.open(cfg.out, "a")
    store._root.attrs["status"] = "writing"
    store._meta["episode_ends"].resize((2,))
    resumed = generate(cfg)
    assert resumed["episodes"] == 3 and resumed["frames_generated"] == 9
    np.testing.assert_array_equal(
        EpisodeStore.open(cfg.out).load_episode(2)["rgb"], reference["rgb"]
    )


def test_gym_world_records_with_random_policy(tmp_path):
    summary = generate(
        _cfg(tmp_path, **{"world": "gym", "env_id": "Reacher-v5", "policy": "random"})
    )
    store = EpisodeStore.open(summary["out"])
    assert store.world == "gym:Reacher-v5" and store.episode_length(0) == 9


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"policy": "scripted", "world": "gym", "env_id": "Hopper-v5"}, "no scripted expert"),
        ({"policy": "ppo"}, "unknown policy"),
        ({"policy": "no_such_module:make"}, "policy='no_such_module:make': cannot import"),
        ({"policy": "test_generate:missing"}, "policy='test_generate:missing': cannot import"),
        ({"world": "gym", "env_id": "Reacher-v5", "camera": "top"}, "no camera 'top'"),
        ({"world": "gym", "policy": "random"}, "env_id"),
        ({"task": "stack"}, "unknown tabletop task"),
        ({"executor": "dask"}, "unknown executor 'dask'; choose one of local, ray"),
    ],
)
def test_bad_generate_settings(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        generate(_cfg(tmp_path, **overrides))


def test_workers_zero_means_one_per_core_and_negative_is_refused(tmp_path, monkeypatch):
    import cosmos_env.generate as gen

    asked = []
    monkeypatch.setattr(gen, "default_workers", lambda jobs: asked.append(jobs) or 1)
    summary = generate(_cfg(tmp_path / "auto", workers=0))
    assert asked == [3] and summary["episodes"] == 3  # sized to the episodes still to do
    with pytest.raises(ValueError, match=r"workers >= 0 \(0: one per core\), got 3, -1"):
        generate(_cfg(tmp_path / "bad", workers=-1))


def _interrupted(cfg: GenerateConfig, keep: int) -> None:
    """Make the complete store at cfg.out look like a killed run with ``keep`` episodes."""
    store = EpisodeStore.open(cfg.out, "a")
    store._root.attrs["status"] = "writing"
    store._meta["episode_ends"].resize((keep,))


def test_a_resume_names_each_changed_setting(tmp_path):
    cfg = _cfg(tmp_path)
    generate(cfg)
    _interrupted(cfg, 2)
    with pytest.raises(StoreError, match=r"noise=0\.0 \(now 0\.3\), seed=0 \(now 5\); resume"):
        generate(_cfg(tmp_path, noise=0.3, seed=5))


def test_a_resume_asking_for_fewer_episodes_than_committed_refuses(tmp_path):
    generate(_cfg(tmp_path, episodes=4))
    _interrupted(_cfg(tmp_path), 3)
    with pytest.raises(
        StoreError, match="already holds 3 committed episodes, more than episodes=2"
    ):
        generate(_cfg(tmp_path, episodes=2))
    assert not EpisodeStore.open(tmp_path / "push.zarr", "a").is_complete  # nothing finalised


def test_stores_carry_the_state_spec_and_a_description_of_their_world(tmp_path):
    store = EpisodeStore.open(generate(_cfg(tmp_path, episodes=1))["out"])
    world = load_world(store.world_description)
    assert world.describe() == {
        "entry_point": "cosmos_env.sim.worlds:tabletop_world",
        "kwargs": {"task": "push", "n_objects": 2},
    }
    assert store.state_spec == world.state_spec and store.state_spec.projection() is not None
    ep = store.load_episode(0)
    expected = world.reward(ep["state"][:-1], ep["action"][:-1], ep["state"][1:])
    np.testing.assert_allclose(ep["reward"][1:], expected, rtol=1e-5, atol=1e-6)


def test_gym_world_records_its_expert_with_state_spec_and_world(tmp_path):
    cfg = _cfg(tmp_path, world="gym", env_id="Reacher-v5", episodes=2, max_steps=10)
    store = EpisodeStore.open(generate(cfg)["out"])
    assert store.n_episodes == 2 and store.episode_length(1) == 11
    assert store.world_description == {
        "entry_point": "cosmos_env.sim.worlds:gym_mujoco_world",
        "kwargs": {
            "env_id": "Reacher-v5",
            "env_kwargs": {},
            "camera": None,
            "landmarks": ["body1", "fingertip", "target"],  # world.landmarks=auto
        },
    }
    world = load_world(store.world_description)
    assert store.state_spec == world.state_spec and store.state_spec.dim == 8 + 3 * 3
    assert store.state_spec.dim_names()[:2] == ("joint0", "joint1")
    assert "default" in store.state_spec.cameras  # its free view: keypoints can be drawn
    ep = store.load_episode(1)
    actions = store.action_spec.scale(ep["action"][:-1])  # stored in [-1, 1]
    rewards = world.reward(ep["state"][:-1], actions, ep["state"][1:])
    np.testing.assert_allclose(ep["reward"][1:], rewards, atol=1e-5)
    assert not ep["is_terminal"].any()  # Reacher only truncates
    # The expert closes in on the target: the distance term of the reward shrinks.
    assert rewards[-1] > rewards[0]


def test_env_kwargs_reach_gym_make_and_the_recorded_world(tmp_path):
    cfg = _cfg(
        tmp_path,
        "+env_kwargs.reward_dist_weight=2",
        world="gym",
        env_id="Reacher-v5",
        policy="random",
        episodes=1,
    )
    assert cfg.env_kwargs == {"reward_dist_weight": 2}
    store = EpisodeStore.open(generate(cfg)["out"])
    assert store.world_description["kwargs"]["env_kwargs"] == {"reward_dist_weight": 2}
    ep = store.load_episode(0)
    s, a, s1 = ep["state"][:-1], store.action_spec.scale(ep["action"][:-1]), ep["state"][1:]
    doubled = load_world(store.world_description).reward(s, a, s1)
    plain = gym_mujoco_world("Reacher-v5", landmarks="auto").reward(s, a, s1)
    np.testing.assert_allclose(ep["reward"][1:], doubled, atol=5e-3)  # random torques: RK4 lag
    assert np.abs(ep["reward"][1:] - plain).min() > 0.05  # the distance term counts twice
    with pytest.raises(ConfigCompositionException, match=r"\+env_kwargs.reward_dist_weight"):
        _cfg(tmp_path, "env_kwargs.reward_dist_weight=2")


class ZeroPolicy:
    """A user policy: the middle of the action space; counts resets and calls."""

    def __init__(self, env):
        self.zero = ((env.action_space.low + env.action_space.high) / 2).astype(np.float32)
        self.observation_space = env.observation_space
        self.seeds, self.calls = [], 0

    def reset(self, seed=None):
        self.seeds.append(seed)

    def act(self, obs, info):
        assert self.observation_space.contains(obs) and "state" in info  # the env's own obs
        self.calls += 1
        return self.zero


def make_zero_policy(env):
    return ZeroPolicy(env)


def make_callable_policy(env):
    return lambda obs, info: np.full(env.action_space.shape, 0.5, np.float32)


def make_nothing(env):
    return 42


@pytest.mark.parametrize("world", [{}, {"world": "gym", "env_id": "Reacher-v5"}])
def test_a_policy_of_ones_own_by_import_path(tmp_path, world):
    store = EpisodeStore.open(
        generate(_cfg(tmp_path, policy=f"{__name__}:make_zero_policy", episodes=2, **world))["out"]
    )
    assert store.attrs["extra"]["generate"]["policy"] == f"{__name__}:make_zero_policy"
    for i in range(2):
        np.testing.assert_array_equal(store.load_episode(i)["action"], 0.0)  # normalised
    import cosmos_env.generate as gen

    policy = gen._worker["policy"]
    assert isinstance(policy, ZeroPolicy) and len(policy.seeds) == 2 and policy.calls == 16

    out = tmp_path / "callable"
    store = EpisodeStore.open(
        generate(_cfg(out, policy=f"{__name__}:make_callable_policy", episodes=1, **world))["out"]
    )
    np.testing.assert_allclose(store.load_episode(0)["action"][:-1], 0.5)  # both Box(-1, 1)
    with pytest.raises(ValueError, match="factory\\(env\\) returned a int"):
        generate(_cfg(tmp_path / "bad", policy=f"{__name__}:make_nothing", **world))


def test_a_resume_accepts_a_store_from_before_the_newer_settings(tmp_path):
    cfg = _cfg(tmp_path)
    generate(cfg)
    _interrupted(cfg, 2)
    store = EpisodeStore.open(cfg.out, "a")
    extra = dict(store._root.attrs["extra"])
    extra["generate"] = {
        k: v for k, v in extra["generate"].items() if k not in ("env_kwargs", "camera")
    }
    store._root.attrs["extra"] = extra
    assert generate(cfg)["episodes"] == 3  # the missing settings were their defaults
    _interrupted(cfg, 2)
    with pytest.raises(StoreError, match=r"env_kwargs=\{\} \(now \{'n_objects': 1\}\)"):
        generate(_cfg(tmp_path, "+env_kwargs.n_objects=1"))


class CrashOnce:
    """A zero policy whose worker process dies (as in a renderer segfault) the first time
    it starts episode 1; a marker file beside the store being written makes it crash only
    once across processes (Ray's workers, started before the test, do not see its
    environment: the config is what reaches every worker)."""

    def __init__(self, env):
        self.zero, self.episode = ZeroPolicy(env).zero, None

    def reset(self, seed=None):
        self.episode = seed

    def act(self, obs, info):
        import cosmos_env.generate as gen

        marker = Path(gen._worker["cfg"].out).with_suffix(".crashed")
        if self.episode == CRASH_SEED and not marker.exists():
            marker.touch()
            os._exit(139)
        return self.zero


CRASH_SEED = episode_seed(0, 1)


def make_crash_once_policy(env):
    return CrashOnce(env)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_dying_worker_is_replaced_and_the_store_is_the_same(tmp_path, request, executor):
    if executor == "ray":
        request.getfixturevalue("ray_session")
    policy = f"{__name__}:make_crash_once_policy"
    cfg = _cfg(tmp_path / "crash", policy=policy, workers=2, episodes=3, executor=executor)
    # episode 0 may or may not be committed when the pool breaks: its worker races the crash
    with pytest.warns(RuntimeWarning, match=r"a worker process died .* from episode [01] \(1/3\)"):
        out = generate(cfg)["out"]
    assert (tmp_path / "crash" / "push.crashed").exists()
    reference = generate(_cfg(tmp_path / "ok", policy=f"{__name__}:make_zero_policy", episodes=3))
    a, b = EpisodeStore.open(out), EpisodeStore.open(reference["out"])
    assert a.is_complete and a.n_episodes == 3
    for i in range(3):
        np.testing.assert_array_equal(a.load_episode(i)["rgb"], b.load_episode(i)["rgb"])


def test_ray_writes_the_same_store_as_this_process(tmp_path, ray_session):
    here = generate(_cfg(tmp_path / "here", episodes=4, max_steps=5))
    on_ray = generate(_cfg(tmp_path / "ray", episodes=4, max_steps=5, executor="ray", workers=2))
    a, b = EpisodeStore.open(here["out"]), EpisodeStore.open(on_ray["out"])
    assert b.is_complete and b.n_episodes == 4
    np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
    assert a.features.keys() == b.features.keys()
    for i in range(4):
        ea, eb = a.load_episode(i), b.load_episode(i)
        for key in a.features:
            np.testing.assert_array_equal(ea[key], eb[key], err_msg=f"episode {i} {key}")
        assert (a.instruction(i), a.source_id(i)) == (b.instruction(i), b.source_id(i))
    made_with = [
        {k: v for k, v in x.attrs["extra"]["generate"].items() if k != "out"} for x in (a, b)
    ]
    assert made_with[0] == made_with[1]  # executor and workers are not recorded as settings
    for key, stats in a.stats.items():
        for name, value in stats.items():
            np.testing.assert_array_equal(value, b.stats[key][name])
