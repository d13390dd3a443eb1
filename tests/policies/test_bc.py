"""Behaviour cloning: the policy network, its release, and training on a tiny store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cosmos_env.data import ActionSpec, EpisodeStore, standard_features
from cosmos_env.sim import state_layout as sl
from policies.base import Policy
from policies.bc import BCConfig, BCNet, BCPolicy
from policies.train_bc import TrainBCConfig, load_bc_data, load_train_bc_config, train_bc

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"channels": [8, 16], "hidden": 32, "depth": 1, "groups": 4}
LENGTHS = (9, 7, 12, 8, 10)  # 5 episodes: one held out at val_fraction 0.2


def make_episode(i: int, length: int) -> dict[str, np.ndarray]:
    """Frames 64x64 with a bright square at the gripper's position; actions a smooth
    function of the state (so that a network can fit them), the last one padding."""
    rng = np.random.default_rng(i)
    state = np.zeros((length, sl.STATE_DIM), np.float32)
    state[:, sl.slot("gripper_pos")] = rng.uniform(-0.2, 0.2, (length, 3))
    state[:, sl.slot("gripper_opening")] = rng.uniform(0.0, 0.08, (length, 1))
    rgb = np.full((length, 64, 64, 3), 40, np.uint8)
    for t, (x, y) in enumerate(((state[:, :2] + 0.2) / 0.4 * 56).astype(int)):
        rgb[t, y : y + 8, x : x + 8] = 220
    action = np.zeros((length, 7), np.float32)
    action[:, :3] = np.tanh(-5.0 * state[:, :3])
    action[:, 6] = -1.0
    action[-1] = 0.0  # padding
    is_first, is_last = np.zeros(length, bool), np.zeros(length, bool)
    is_first[0], is_last[-1] = True, True
    reward = np.zeros(length, np.float32)
    return dict(
        rgb=rgb, state=state, action=action, reward=reward, is_first=is_first, is_last=is_last
    )


def make_store(path: Path) -> Path:
    spec = ActionSpec(
        names=("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"),
        units=("m", "m", "m", "rad", "rad", "rad", "open_fraction"),
        low=(-0.04, -0.04, -0.04, -0.25, -0.25, -0.25, 0.0),
        high=(0.04, 0.04, 0.04, 0.25, 0.25, 0.25, 1.0),
    )
    features = standard_features(64, 64, sl.STATE_DIM, 7, state_names=sl.state_names())
    with EpisodeStore.create(
        path, features=features, action_spec=spec, fps=10.0, world="tabletop", chunk_frames=16
    ) as store:
        for i, n in enumerate(LENGTHS):
            store.append_episode(make_episode(i, n))
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bc_data")
    make_store(root / "push-noise0.0.zarr")
    return root


def tiny_cfg(data_dir: Path, out: Path, **kw) -> TrainBCConfig:
    base = dict(
        data=str(data_dir),
        out=str(out),
        steps=30,
        save_at=[10, 30],
        batch_size=16,
        lr=3e-3,
        warmup_steps=3,
        val_fraction=0.2,
        eval_frames=64,
        eval_every=10,
        threads=1,
    )
    return TrainBCConfig(model=BCConfig(**TINY), **(base | kw))


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bc_run")
    return train_bc(tiny_cfg(data_dir, out)), out


def batch(n: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    eps = [make_episode(seed + i, 2) for i in range(n)]
    obs = np.stack([e["rgb"][0] for e in eps])
    return obs, {"state": np.stack([e["state"][0] for e in eps])}


def test_training_writes_releases_and_log(trained):
    summary, out = trained
    assert summary["steps"] == 30
    assert summary["releases"] == [str(out / "step_10"), str(out / "step_30")]
    for step in (10, 30):
        names = {p.name for p in (out / f"step_{step}").iterdir()}
        assert {"model.safetensors", "config.json", "card.md"} <= names
    log = (out / "train.log").read_text()
    assert "step 10 eval" in log and "step 30 eval" in log and "val_loss" in log
    assert "finished: 30 steps" in log and (out / "train_state.pt").exists()
    # The train rows exclude each episode's padding row; one episode of five is held out.
    assert summary["train_frames"] + summary["val_frames"] == sum(LENGTHS) - len(LENGTHS)
    assert summary["val_loss"] is not None and summary["seconds_per_step"] > 0


def test_overfitting_reduces_the_loss(trained):
    summary, _ = trained
    assert summary["train_loss"] < 0.5 * summary["initial_train_loss"]


def test_release_config_and_load(trained):
    summary, out = trained
    policy = BCPolicy.load(out / "step_30")
    assert isinstance(policy, Policy) and policy.name == "bc"
    policy.name = "bc-30"
    assert policy.name == "bc-30"
    from cosmos_env.checkpoint import read_config

    config = read_config(out / "step_30")
    assert config["steps"] == 30 and config["stores"] == ["push-noise0.0.zarr"]
    assert len(config["proprio"]["mean"]) == 4 and min(config["proprio"]["std"]) > 0
    assert config["train_loss"] == summary["train_loss"]
    np.testing.assert_allclose(policy.net.proprio_mean.numpy(), config["proprio"]["mean"])


def test_act_and_act_batch(trained):
    policy = BCPolicy.load(trained[1] / "step_10")
    obs, info = batch(5)
    actions = policy.act_batch(obs, info)
    assert actions.shape == (5, 7) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 1.0)
    np.testing.assert_array_equal(actions, policy.act_batch(obs.copy(), {"state": info["state"]}))
    one = policy.act(obs[2], {"state": info["state"][2]})
    assert one.shape == (7,) and one.dtype == np.float32
    np.testing.assert_allclose(one, actions[2], atol=1e-5)


def test_bad_inputs_raise(trained):
    policy = BCPolicy.load(trained[1] / "step_10")
    obs, info = batch(2)
    with pytest.raises(ValueError, match=r"info\['state'\]"):
        policy.act_batch(obs, None)
    with pytest.raises(ValueError, match=r"info\['state'\]"):
        policy.act_batch(obs, {"reward": np.zeros(2)})
    with pytest.raises(ValueError, match=r"uint8 \(N, 64, 64, 3\)"):
        policy.act_batch(obs[:, :32], info)
    with pytest.raises(ValueError, match="uint8"):
        policy.act_batch(obs.astype(np.float32), info)
    with pytest.raises(ValueError, match="36-d"):
        policy.act_batch(obs, {"state": info["state"][:, :8]})


def test_training_is_deterministic(data_dir, tmp_path):
    paths = []
    for run in ("a", "b"):
        train_bc(tiny_cfg(data_dir, tmp_path / run, steps=6, save_at=[]))
        paths.append(tmp_path / run / "step_6" / "model.safetensors")
    first, second = (load_file(p) for p in paths)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_bad_data_and_save_at_raise(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"nowhere.*push-noise0\.0\*"):
        train_bc(tiny_cfg(tmp_path / "nowhere", tmp_path / "out"))
    with pytest.raises(ValueError, match=r"pick_place\*"):
        train_bc(tiny_cfg(data_dir, tmp_path / "out", stores="pick_place*"))
    with pytest.raises(ValueError, match="save_at"):
        train_bc(tiny_cfg(data_dir, tmp_path / "out", save_at=[10, 31]))
    assert not (tmp_path / "out").exists()


def test_data_excludes_padding_rows(data_dir):
    paths = [data_dir / "push-noise0.0.zarr"]
    train = load_bc_data(paths, "train", 0.2, 0, BCConfig(**TINY))
    assert train.episodes == 4 and train.frames.dtype == np.uint8
    assert train.proprio.shape == (len(train), 4) and train.actions.shape == (len(train), 7)
    assert np.all(train.actions[:, 6] == -1.0)  # no padding (all-zero) action slipped in


def test_config_from_overrides():
    cfg = load_train_bc_config(["data=/x", "steps=50", "save_at=[5,50]", "model.hidden=16"])
    assert (cfg.data, cfg.steps, cfg.save_at, cfg.model.hidden) == ("/x", 50, [5, 50], 16)
    assert cfg.stores == "push-noise0.0*" and cfg.augment_shift == 4
    with pytest.raises(Exception, match="nonsense"):
        load_train_bc_config(["+nonsense=1"])


def test_default_network_is_small():
    net = BCNet(BCConfig())
    assert sum(p.numel() for p in net.parameters()) < 500_000


def test_a_stopped_run_resumes_where_it_stopped(data_dir, tmp_path):
    first = train_bc(tiny_cfg(data_dir, tmp_path, steps=6, save_at=[]))
    assert first["steps"] == 6 and (tmp_path / "train_state.pt").exists()
    second = train_bc(tiny_cfg(data_dir, tmp_path, steps=12, save_at=[]))
    assert second["steps"] == 12 and "resumed from step 6" in (tmp_path / "train.log").read_text()
    assert second["releases"] == [str(tmp_path / "step_12")]
    fresh = train_bc(tiny_cfg(data_dir, tmp_path / "fresh", steps=12, save_at=[], resume=False))
    assert fresh["steps"] == 12  # resume=False starts over
