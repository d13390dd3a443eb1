import numpy as np
import pytest
from hydra.errors import ConfigCompositionException

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data import EpisodeStore, StoreError
from cosmos_env.generate import generate
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.tasks import get_task


def _cfg(tmp_path, **overrides) -> GenerateConfig:
    args = [f"out={tmp_path / 'push.zarr'}", "episodes=3", "workers=1", "max_steps=8"]
    return load_config(
        "generate", GenerateConfig, args + [f"{k}={v}" for k, v in overrides.items()]
    )


def test_overrides_compose_into_typed_config(tmp_path):
    cfg = _cfg(tmp_path, noise=0.3, task="pick_place")
    assert cfg.noise == 0.3 and cfg.task == "pick_place" and cfg.world.name == "tabletop"
    gym_cfg = load_config("generate", GenerateConfig, ["world=gym", "env_id=Pusher-v5"])
    assert gym_cfg.world.name == "gym" and gym_cfg.env_id == "Pusher-v5"


def test_unknown_override_fails_loudly():
    with pytest.raises(ConfigCompositionException, match="epsiodes"):
        load_config("generate", GenerateConfig, ["epsiodes=3"])


def test_generate_writes_a_complete_store_with_consistent_rows(tmp_path):
    summary = generate(_cfg(tmp_path))
    store = EpisodeStore.open(summary["out"])
    assert store.n_episodes == 3 and store.n_frames == 3 * 9
    assert store.attrs["extra"]["generate"]["task"] == "push"
    assert store.fps == 5.0 and store.world == "tabletop"
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
        ({"policy": "scripted", "world": "gym", "env_id": "Reacher-v5"}, "world=tabletop"),
        ({"policy": "ppo"}, "unknown policy"),
        ({"world": "gym", "policy": "random"}, "env_id"),
        ({"task": "stack"}, "unknown tabletop task"),
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
