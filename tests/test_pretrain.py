"""``pretrain`` (corpus -> general tokenizer -> latents -> action-free base) and
``post-train`` (a base to one world's env) end to end on tiny settings; a killed base
training resumes rather than restarts; bad input (another resolution, a base of other
weights, a base used as a world model) is refused with errors that say so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cosmos_env.__main__ import main
from cosmos_env.checkpoint import CheckpointError, load_training_state
from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.dynamics.release import load_world_model
from cosmos_env.envs.world_model_env import WorldModelEnv
from cosmos_env.generate import generate

SOURCES = (
    "+sources={tt:{world:tabletop_random,task:push,noise:[0.0,1.0],episodes:6,max_steps:6},"
    "reacher:{world:gym,env_id:Reacher-v5,policy:play,episodes:3,max_steps:6}}"
)
TOKENIZER = ["steps=2", "batch_size=4", "eval_every=1000", "save_every=1000", "eval_frames=8"]
NET = [
    "dynamics.net.width=32",
    "dynamics.net.depth=1",
    "dynamics.net.heads=2",
    "dynamics.net.adaln_rank=8",
    "dynamics.probe_width=8",
]
BASE = ["steps=3", "batch_size=4", "eval_every=1000", "save_every=1000", "eval_windows=4"]
BASE += ["val_fraction=0.34", *NET]
POST = ["steps=3", "batch_size=4", "state_batch=8", "eval_every=1000", "save_every=1000"]
POST += ["eval_windows=4", "reset_frames=2", "val_fraction=0.25", *NET]
POST += ["dynamics.state_track.width=16", "dynamics.outcome_heads.width=16"]


def _list(overrides: list[str]) -> str:
    return "[" + ",".join(f"'{o}'" for o in overrides) + "]"


def _pretrain_args(out) -> list[str]:
    return [
        "pretrain",
        f"out={out}",
        f"corpus_overrides={_list(['workers=1', '~sources', SOURCES])}",
        f"tokenizer_overrides={_list(TOKENIZER)}",
        f"base_overrides={_list(BASE)}",
    ]


def _store(path, image_size: int = 64) -> None:
    args = [f"out={path}", "episodes=4", "workers=1", "max_steps=6", f"image_size={image_size}"]
    generate(load_config("generate", GenerateConfig, args))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    assert main(_pretrain_args(root / "run")) == 0
    _store(root / "push" / "push.zarr")
    post = ["post-train", f"base={root / 'run' / 'base' / 'release'}"]
    post += [f"data={root / 'push'}", f"out={root / 'post'}", f"dynamics_overrides={_list(POST)}"]
    assert main(post) == 0
    return root


def test_pretrain_makes_a_corpus_a_general_tokenizer_and_a_base(pretrained):
    run = pretrained / "run"
    record = json.loads((run / "pretrain.json").read_text())
    assert list(record["minutes"]) == ["corpus", "tokenizer", "encode", "base"]
    assert record["corpus"]["worlds"] == ["gym:Reacher-v5", "tabletop-push"]
    config = json.loads((run / "base" / "release" / "config.json").read_text())
    assert config["kind"] == "world-foundation-model"
    assert config["dynamics"]["action_dim"] == 0 and config["dynamics"]["state_dim"] == 0
    assert config["tokenizer"]["source"] == str((run / "tokenizer" / "release").resolve())
    assert set(config["corpus"]) == {"gym:Reacher-v5", "tabletop-push"}
    card = (run / "base" / "release" / "card.md").read_text()
    assert "Made by `python -m cosmos_env pretrain" in card and "Reacher-v5" in card
    with pytest.raises(CheckpointError, match="pre-trained base, not a world model"):
        load_world_model(run / "base" / "release")


def test_a_post_trained_release_steps_as_an_env_and_holds_only_its_changes(pretrained):
    release = pretrained / "post" / "dynamics" / "release"
    config = json.loads((release / "config.json").read_text())
    base = pretrained / "run" / "base" / "release"
    assert config["base"]["source"] == str(base.resolve()) and config["base"]["adapter_rank"] == 16
    from safetensors import safe_open

    with safe_open(release / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert any(k.endswith("lora_b") for k in keys)
    assert "denoiser.net.blocks.0.attn.qkv.base.weight" not in keys  # the base's, not stored
    assert any(k.startswith("denoiser.net.action_embedding") for k in keys)
    env = WorldModelEnv(checkpoint=str(release))
    obs, info = env.reset(seed=0)
    for _ in range(2):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and np.isfinite(reward)
    env.close()
    card = (release / "card.md").read_text()
    assert "base=" in card and "the base's" in card


def test_a_refit_of_a_post_trained_release_stands_alone(pretrained, tmp_path):
    """Loading merges the adapters into the base's weights, so the refit stores them all and
    records the base it came from, rather than naming a base its tensors no longer fit."""
    release = pretrained / "post" / "dynamics" / "release"
    refit = ["refit-state-track", f"world_model={release}", f"data={pretrained / 'push'}"]
    refit += ["stores=*", "frame_head=null", "steps=2", "batch_size=8", "eval_windows=4"]
    refit += ["warmup_steps=1", "threads=1", f"out={tmp_path / 'refit'}"]
    assert main(refit) == 0
    config = json.loads((tmp_path / "refit" / "release" / "config.json").read_text())
    assert "base" not in config and config["post_trained_from"]["adapter_rank"] == 16
    old, new = load_world_model(release), load_world_model(tmp_path / "refit" / "release")
    for key, value in old.dynamics.denoiser.state_dict().items():
        torch.testing.assert_close(new.dynamics.denoiser.state_dict()[key], value)


def test_a_quantized_post_trained_release_still_stores_only_its_changes(pretrained, tmp_path):
    from safetensors import safe_open

    from cosmos_env.dynamics.quantize import QuantizeConfig, quantize_release

    release = pretrained / "post" / "dynamics" / "release"
    quantize_release(QuantizeConfig(str(release), str(tmp_path / "q"), weights="int8"))
    with safe_open(release / "model.safetensors", "pt") as f:
        before = set(f.keys())
    with safe_open(tmp_path / "q" / "model.safetensors", "pt") as f:
        after = {k for k in f.keys() if not k.endswith("@scale")}
    assert after == before  # adapters and the base's missing parts, not the base
    config = json.loads((tmp_path / "q" / "config.json").read_text())
    assert config["base"] == json.loads((release / "config.json").read_text())["base"]
    old, new = load_world_model(release).dynamics, load_world_model(tmp_path / "q").dynamics
    for name, value in old.state_dict().items():
        torch.testing.assert_close(new.state_dict()[name], value, atol=0.05, rtol=0.05)


def test_post_training_refuses_frames_of_another_resolution(pretrained, tmp_path):
    _store(tmp_path / "small" / "s.zarr", image_size=32)
    args = ["post-train", f"base={pretrained / 'run' / 'base' / 'release'}"]
    args += [f"data={tmp_path / 'small'}", f"out={tmp_path / 'out'}"]
    with pytest.raises(ValueError, match=r"32x32 frames, but base .* on 64x64 frames"):
        main(args)


def test_a_release_refuses_a_base_whose_weights_changed(pretrained, tmp_path):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(pretrained / "run" / "base" / "release", base)
    release = tmp_path / "release"
    shutil.copytree(pretrained / "post" / "dynamics" / "release", release)
    config = json.loads((release / "config.json").read_text())
    config["base"]["source"] = str(base)
    (release / "config.json").write_text(json.dumps(config))
    load_world_model(release)  # the same weights elsewhere: fine
    from cosmos_env.dynamics.diffusion.base import load_base, save_base

    other = load_base(base)
    with __import__("torch").no_grad():
        next(other.model.parameters()).add_(1.0)
    tokenizer = load_world_model(release).tokenizer
    save_base(base, other.model, tokenizer, "card")
    with pytest.raises(CheckpointError, match="installed base has weights"):
        load_world_model(release)


def test_a_rerun_pretrain_keeps_every_finished_stage(pretrained):
    run = pretrained / "run"
    before = (run / "base" / "release" / "model.safetensors").read_bytes()
    minutes = json.loads((run / "pretrain.json").read_text())["minutes"]
    assert main(_pretrain_args(run)) == 0
    after = json.loads((run / "pretrain.json").read_text())["minutes"]
    assert (run / "base" / "release" / "model.safetensors").read_bytes() == before
    assert (
        after["base"] - minutes["base"] < 0.05 and after["tokenizer"] - minutes["tokenizer"] < 0.05
    )


def test_a_killed_base_training_resumes_where_it_stopped(pretrained, tmp_path):
    """Kill ``pretrain-base`` (SIGKILL, no clean-up) once it has saved a training state,
    then re-run it: it resumes from that step and finishes the rest."""
    run = pretrained / "run"
    args = [sys.executable, "-m", "cosmos_env", "pretrain-base", f"data={run / 'corpus'}"]
    args += [f"tokenizer={run / 'tokenizer' / 'release'}", f"out={tmp_path / 'b'}"]
    args += [o for o in BASE if not o.startswith(("steps=", "save_every="))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*args, "steps=100000", "save_every=2"], env=env)
    state = tmp_path / "b" / "train_state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # a few more steps, maybe another save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the run never saved a training state"
    # How far the killed run got depends on the machine's speed: finish a fixed 20 steps past it.
    saved = int(load_training_state(state)["step"])
    total = saved + 20
    subprocess.run([*args, f"steps={total}", "save_every=1000"], env=env, check=True)
    log = (tmp_path / "b" / "train.log").read_text()
    resumed = [line for line in log.splitlines() if "resumed from step" in line]
    assert resumed, "the second run did not resume"
    step = int(resumed[0].split("resumed from step ")[1].split()[0])
    assert step == saved >= 2 and f"finished: {total} steps" in log


def test_the_data_efficiency_benchmark_compares_post_and_scratch_training(pretrained, tmp_path):
    import importlib.util

    path = __import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(path))
    try:
        spec = importlib.util.spec_from_file_location(
            "data_efficiency_bench", path / "data_efficiency.py"
        )
        module = sys.modules["data_efficiency_bench"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # registered first: its dataclasses look it up
    finally:
        sys.path.remove(str(path))
    argv = ["data_efficiency.py", "--quick", "--out", str(tmp_path), "--episodes", "5"]
    argv += ["--minutes", "0.02", "--targets", "tabletop_heldout_push"]
    argv += ["--eval-episodes", "2", "--rank-episodes", "2"]
    argv += ["--base", str(pretrained / "run" / "base" / "release")]
    sys.argv = argv
    module.main()
    results = json.loads((tmp_path / "data_efficiency.json").read_text())
    module._make = None  # a re-run with the same settings trains nothing: it keeps the scores
    module.main()
    again = json.loads((tmp_path / "data_efficiency.json").read_text())
    assert json.dumps(again["targets"]) == json.dumps(results["targets"])  # NaN-safe
    runs = results["targets"]["tabletop_heldout_push"]
    assert set(runs) == {"post_5", "scratch_5"}
    for row in runs.values():
        for key in ("psnr_h1", "psnr_mean_h1_16", "psnr_h16", "copy_last_psnr_h16"):
            assert np.isfinite(row[key]), key
        assert row["gain_h16_db"] == pytest.approx(row["psnr_h16"] - row["copy_last_psnr_h16"])
        assert -1 <= row["ranking_pearson"] <= 1 or np.isnan(row["ranking_pearson"])
    post = json.loads(
        (
            tmp_path
            / "data_efficiency_runs"
            / "tabletop_heldout_push"
            / "post_5"
            / "dynamics"
            / "release"
            / "config.json"
        ).read_text()
    )
    scratch = json.loads(
        (
            tmp_path
            / "data_efficiency_runs"
            / "tabletop_heldout_push"
            / "scratch_5"
            / "dynamics"
            / "release"
            / "config.json"
        ).read_text()
    )
    assert "base" in post and "base" not in scratch
    assert post["dynamics"]["net"] == scratch["dynamics"]["net"]  # the same network size
    assert post["world"]["description"]["kwargs"]["scene"]["task_object"]["shapes"] == ["capsule"]
    assert (tmp_path / "data_efficiency.png").stat().st_size > 0
    assert "| tabletop_heldout_push | 5 | post |" in (tmp_path / "data_efficiency.md").read_text()


def test_the_shipped_base_post_trains_by_name_into_an_env(tmp_path):
    _store(tmp_path / "push" / "push.zarr")
    tiny = ["steps=2", "batch_size=2", "state_batch=8", "eval_every=1000", "save_every=1000"]
    tiny += ["eval_windows=2", "reset_frames=2", "val_fraction=0.25"]
    tiny += ["dynamics.state_track.width=16", "dynamics.outcome_heads.width=16"]
    post = ["post-train", "base=base-64", f"data={tmp_path / 'push'}", f"out={tmp_path / 'post'}"]
    assert main([*post, f"dynamics_overrides={_list(tiny)}"]) == 0
    release = tmp_path / "post" / "dynamics" / "release"
    config = json.loads((release / "config.json").read_text())
    assert config["base"]["source"] == "base-64"  # by name: the install's path differs
    assert config["tokenizer"]["checksum"] == "5a033035065d"  # CI8x8-general's weights
    env = WorldModelEnv(checkpoint=str(release))
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and np.isfinite(reward)
    env.close()
