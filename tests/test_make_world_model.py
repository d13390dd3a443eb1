"""``make-world-model``: a converted Bridge-format store to a world-model env in one command
(tiny budget), resumed runs that redo nothing, and clear errors for bad input."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from cosmos_env.__main__ import main
from cosmos_env.data import EpisodeStore
from cosmos_env.data.converters.bridge import convert_bridge
from cosmos_env.data.store import StoreError
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.make_world_model import MADE_BY, _write_made_by

_FIXTURES = Path(__file__).parent / "data" / "converters" / "bridge_fixtures.py"
_spec = importlib.util.spec_from_file_location("bridge_fixtures_mwm", _FIXTURES)
bridge_fixtures = sys.modules["bridge_fixtures_mwm"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bridge_fixtures)  # registered first: its dataclasses look it up

# A few optimisation steps of a tiny network: the pipeline, not the model, is under test.
RUN_TINY = [  # either backend's training: a few steps, no intermediate evals or saves
    "steps=3",
    "batch_size=4",
    "state_batch=8",
    "eval_every=1000",
    "save_every=1000",
    "eval_windows=4",
    "reset_frames=2",
    "val_fraction=0.25",
]
TINY = [
    *RUN_TINY,
    "dynamics.net.width=32",
    "dynamics.net.depth=1",
    "dynamics.net.heads=2",
    "dynamics.net.adaln_rank=8",
    "dynamics.probe_width=8",
    "dynamics.state_track.width=16",
    "dynamics.outcome_heads.width=16",
]


def _args(data: Path, out: Path) -> list[str]:
    overrides = ",".join(f"'{o}'" for o in TINY)
    return [
        "make-world-model",
        f"data={data}",
        f"out={out}",
        "tokenizer_min_psnr=0",  # the shipped tokenizer, whatever its PSNR: no fine-tuning
        f"dynamics_overrides=[{overrides}]",
    ]


@pytest.fixture(scope="module")
def bridge_world_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge_mwm")
    bridge_fixtures.write_raw_dataset(root / "src", lengths=(6, 7, 8, 6, 7, 8, 6, 7))
    convert_bridge(root / "src", root / "data" / "bridge.zarr", image_size=64)
    assert main(_args(root / "data", root / "out")) == 0
    return root


def test_a_bridge_store_becomes_a_stepping_world_model_env(bridge_world_model):
    release = bridge_world_model / "out" / "dynamics" / "release"
    config = json.loads((release / "config.json").read_text())
    assert config["world"]["name"] == "bridge_v2" and config["world"]["description"] is None
    assert config["world"]["action_spec"]["names"][:3] == ["dx", "dy", "dz"]
    assert config["dynamics"]["action_dim"] == 7 and config["dynamics"]["state_dim"] == 7
    track = config["dynamics"]["state_track"]
    assert track["integrator"]["slot"] == "ee_pos"  # the integrator, from the spec's roles
    assert "reward" in config["outcomes"]
    assert "make-world-model" in (release / "card.md").read_text()
    env = WorldModelEnv(checkpoint=str(release))
    assert env.action_space.shape == (7,) and env.observation_space.shape == (64, 64, 3)
    obs, info = env.reset(seed=0)
    assert info["score_sources"]["reward"] == "learned"  # no simulator: learned heads
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and np.isfinite(reward)
    assert info["state"].shape == (7,)
    env.close()


def test_a_store_only_world_refuses_simulator_resets(bridge_world_model):
    release = bridge_world_model / "out" / "dynamics" / "release"
    with pytest.raises(ValueError, match="needs a simulator.*store-only world 'bridge_v2'"):
        WorldModelEnv(checkpoint=str(release), reset_source="sim")


def test_rerunning_a_finished_command_redoes_nothing(bridge_world_model, capsys):
    release = bridge_world_model / "out" / "dynamics" / "release"
    record = bridge_world_model / "out" / "make_world_model.json"
    before = (release / "model.safetensors").read_bytes()
    minutes = json.loads(record.read_text())["minutes"]
    assert main(_args(bridge_world_model / "data", bridge_world_model / "out")) == 0
    after = json.loads(record.read_text())["minutes"]
    assert after["train_dynamics"] - minutes["train_dynamics"] < 0.05  # nothing retrained
    assert (release / "model.safetensors").read_bytes() == before
    card = (release / "card.md").read_text()
    assert card.count("Made by `python -m cosmos_env make-world-model") == 1


def test_a_store_without_a_state_spec_is_refused(bridge_world_model, tmp_path):
    store = EpisodeStore.open(bridge_world_model / "data" / "bridge.zarr")
    old = tmp_path / "old.zarr"
    shutil.copytree(store.path, old)
    group = zarr.open_group(str(old), mode="r+")
    attrs = group.attrs.asdict()
    del attrs["state_spec"]  # as an older cosmos-env wrote it
    group.attrs.put(attrs)
    with pytest.raises(StoreError, match="has no state spec"):
        main(["make-world-model", f"data={old}", f"out={tmp_path / 'out'}"])


def test_env_kwargs_reach_generate_as_given():
    """A nested gym.make argument (a camera config) survives the overrides make-world-model
    hands to generate."""
    from cosmos_env.config import GenerateConfig, load_config, override_value

    camera = {"trackbodyid": -1, "distance": 0.62, "lookat": [0.0, 0.0, 0.0], "fixed": True}
    value = {"default_camera_config": camera, "frame_skip": 3, "xml_file": None}
    overrides = ["world=gym", "env_id=Reacher-v5", "world.landmarks=[fingertip,target]"]
    overrides += [f"+env_kwargs.{k}={override_value(v)}" for k, v in value.items()]
    cfg = load_config("generate", GenerateConfig, overrides)
    assert cfg.env_kwargs == value and cfg.world.landmarks == ["fingertip", "target"]
    assert override_value("auto") == "auto"


def test_the_card_records_a_command_that_rebuilds_the_same_config():
    import shlex

    from cosmos_env.config import MakeWorldModelConfig, load_config
    from cosmos_env.make_world_model import _settings

    given = ["world=gym", "env_id=Reacher-v5", "noise=[0.0,0.5]", "episodes=40"]
    given += ["+env_kwargs.default_camera_config={distance:0.62,lookat:[0.0,0.0,0.0]}"]
    given += ["tokenizer=CI8x8-gym", 'dynamics_overrides=["dynamics.net.width=128"]']
    stages = (["state_refit.steps=2000", "state_refit.max_minutes=5"], ["state_refit=null"])
    stages += (["state_refit.frame_objects=[cube]"], ["state_refit.play_episodes=360"])
    for stage in stages:
        cfg = load_config("make_world_model", MakeWorldModelConfig, given + stage, ("tokenizer",))
        again = load_config(
            "make_world_model", MakeWorldModelConfig, shlex.split(_settings(cfg)), ("tokenizer",)
        )
        assert again == cfg
    # The instructed tabletop's three objects and a post-training from the base.
    given = ["world=tabletop", "task=instruct", "world.n_objects=3", "base=base-64"]
    given += ['dynamics_overrides=["dynamics.text={}","dynamics.actions=false"]']
    cfg = load_config("make_world_model", MakeWorldModelConfig, given, ("tokenizer",))
    again = load_config(
        "make_world_model", MakeWorldModelConfig, shlex.split(_settings(cfg)), ("tokenizer",)
    )
    assert again == cfg and again.world.n_objects == 3


@pytest.fixture(scope="module")
def tabletop_world_model(tmp_path_factory):
    """The one command on the tabletop's push task (a few short episodes): its state track
    has a gripper-frame head, so the state-refit stage runs."""
    out = tmp_path_factory.mktemp("tabletop_mwm") / "out"
    overrides = ",".join(f"'{o}'" for o in TINY)
    args = ["make-world-model", "world=tabletop", "task=push", "episodes=4", "noise=[0.0,1.0]"]
    args += ["max_steps=12", "workers=1", "tokenizer_min_psnr=0", f"out={out}"]
    args += [f"dynamics_overrides=[{overrides}]", "state_refit.steps=3"]
    args += ["state_refit.batch_size=8", "state_refit.frame_objects=[cube]"]
    args += ["state_refit.play_episodes=2"]
    assert main(args) == 0
    return out, args


def test_a_track_with_a_frame_head_is_trained_again_alone(tabletop_world_model):
    from cosmos_env.dynamics.release import load_world_model

    out, _ = tabletop_world_model
    summary = json.loads((out / "make_world_model.json").read_text())
    assert summary["release"] == str(out / "state_refit" / "release")
    joint = load_world_model(out / "dynamics" / "release").dynamics
    shipped = load_world_model(out / "state_refit" / "release").dynamics
    head = joint.cfg.state_track.frame_head
    assert head is not None and list(head.objects) == ["cube", "cylinder"]
    refit_head = shipped.cfg.state_track.frame_head  # the stage's objects, else the same
    assert list(refit_head.objects) == ["cube"] and refit_head.width == head.width
    old, new = joint.state_dict(), shipped.state_dict()
    for key, value in old.items():
        if key.startswith("denoiser."):
            torch.testing.assert_close(new[key], value)  # the denoiser is kept
    track = [k for k in old if k.startswith(("state_dynamics.", "frame_head."))]
    assert track and any(not torch.equal(new[k], old[k]) for k in track)
    card = (out / "state_refit" / "release" / "card.md").read_text()
    assert "## State track refit" in card and "refit-state-track" in card
    assert card.count("Made by `python -m cosmos_env make-world-model") == 1
    assert "state_refit.steps=3" in card  # the reproduce line carries the stage's settings
    assert "'state_refit.play_episodes=2'" in card
    play = EpisodeStore.open(out / "state_refit" / "data" / "play.zarr")
    assert play.n_episodes == 2 and play.attrs["extra"]["generate"]["policy"] == "play"
    assert f"extra_data={out / 'state_refit' / 'data' / 'play.zarr'}" in card
    facts = card.split("\n\n")[2]  # the first bullet list: data, training, made by
    assert facts.startswith("- Data:") and "Made by `python -m cosmos_env" in facts
    assert summary["minutes"]["state_refit"] > 0


def test_state_refit_null_ships_the_jointly_trained_release(tabletop_world_model, tmp_path):
    out, args = tabletop_world_model
    again = [a if not a.startswith("out=") else f"out={tmp_path / 'out'}" for a in args]
    again = [a for a in again if not a.startswith("state_refit.")] + ["state_refit=null"]
    again += [f"data={out / 'data'}"]  # the same stores, not recorded again
    assert main(again) == 0
    summary = json.loads((tmp_path / "out" / "make_world_model.json").read_text())
    assert summary["release"] == str(tmp_path / "out" / "dynamics" / "release")
    assert not (tmp_path / "out" / "state_refit").exists()


def test_the_made_by_line_ends_the_cards_first_list_and_replaces_an_older_one(tmp_path):
    card = tmp_path / "card.md"
    older = f"{MADE_BY} world=gym`: 1 min"
    card.write_text(
        f"# Model\n\n- Data: x\n- Training: y\n  continued\n{older}\n\n## Next\n\n- z\n"
    )
    _write_made_by(card, f"{MADE_BY} world=tabletop`: 2 min")
    lines = card.read_text().splitlines()
    assert lines[2:6] == ["- Data: x", "- Training: y", "  continued", lines[5]]
    assert lines[5].endswith("world=tabletop`: 2 min") and lines[6:] == ["", "## Next", "", "- z"]


def test_play_episodes_need_a_world_not_stores(tmp_path):
    from cosmos_env.config import MakeWorldModelConfig, load_config
    from cosmos_env.make_world_model import _play_store

    cfg = load_config(
        "make_world_model",
        MakeWorldModelConfig,
        [f"data={tmp_path}", "state_refit.play_episodes=10"],
        ("tokenizer",),
    )
    with pytest.raises(ValueError, match="set state_refit.play_episodes=0"):
        _play_store(cfg, tmp_path / "refit", None)


TINY_AR = [
    *RUN_TINY,
    "sampler_steps=2",
    "dynamics.width=16",
    "dynamics.depth=1",
    "dynamics.heads=2",
    "dynamics.probe_width=8",
    "dynamics.state_track.width=16",
    "dynamics.outcome_heads.width=16",
]


def test_backend_ar_makes_a_token_world_model_with_the_state_track(bridge_world_model, tmp_path):
    """The same command makes the AR world model from the same stores: DI8x8 tokens, the
    shared state track from the StateSpec roles, and an env that steps on it."""
    overrides = ",".join(f"'{o}'" for o in TINY_AR)
    args = ["make-world-model", f"data={bridge_world_model / 'data'}", f"out={tmp_path}"]
    args += ["backend=ar", "tokenizer=DI8x8", "tokenizer_min_psnr=0"]
    assert main([*args, f"dynamics_overrides=[{overrides}]"]) == 0
    release = tmp_path / "dynamics" / "release"
    config = json.loads((release / "config.json").read_text())
    assert config["dynamics"]["kind"] == "autoregressive"
    assert config["dynamics"]["state_track"]["integrator"]["slot"] == "ee_pos"
    card = (release / "card.md").read_text()
    assert card.startswith("# Autoregressive world model") and "backend=ar" in card
    env = WorldModelEnv(checkpoint=str(release))
    _, info = env.reset(seed=0)
    obs, reward, _, _, info = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and np.isfinite(reward) and info["state"].shape == (7,)
    env.close()


def test_a_backend_and_tokenizer_that_do_not_fit_are_refused_before_recording(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="backend=ar needs a discrete one .* is continuous"):
        main(["make-world-model", "backend=ar", "tokenizer=CI8x8", f"out={out}"])
    with pytest.raises(ValueError, match="backend=diffusion needs a continuous one"):
        main(["make-world-model", "tokenizer=DI8x8", f"out={out}"])
    with pytest.raises(ValueError, match="is a diffusion base: use backend=diffusion"):
        main(["make-world-model", "backend=ar", "base=base-64", f"out={out}"])
    with pytest.raises(ValueError, match="backend 'transformer' unknown"):
        main(["make-world-model", "backend=transformer", f"out={out}"])
    assert not (out / "data").exists()  # nothing was recorded
