import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from cosmos_env import checkpoint
from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.data import EpisodeStore
from cosmos_env.generate import generate
from cosmos_env.tokenizer import Tokenizer
from cosmos_env.tokenizer.cache import StaleCacheError, encode_store, load_cache
from cosmos_env.tokenizer.release import (
    decode_frames,
    encode_frames,
    load_tokenizer,
    save_tokenizer,
)
from cosmos_env.tokenizer.train import train_tokenizer
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("stores")
    for task in ("push", "pick_place"):
        overrides = [f"out={out / f'{task}.zarr'}", f"task={task}", "episodes=4", "workers=1"]
        overrides += ["max_steps=7", "image_size=32"]
        generate(load_config("generate", GenerateConfig, overrides))
    return out


def _train_cfg(store_dir, out, **overrides) -> TrainTokenizerConfig:
    cfg = TrainTokenizerConfig(
        tokenizer=tiny_config(**overrides.pop("tokenizer", {})),
        data=str(store_dir),
        out=str(out),
        steps=20,
        batch_size=8,
        eval_every=10,
        save_every=10,
        eval_frames=8,
        val_fraction=0.25,
        warmup_steps=2,
        amp=False,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_training_lowers_the_loss_and_releases(store_dir, tmp_path):
    result = train_tokenizer(_train_cfg(store_dir, tmp_path / "run", steps=40, lr=3e-3))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "finished: 40 steps" in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()  # the loss every 50 steps is not reached; each eval's scores and samples are
    assert [e.step for e in events.Scalars("eval/psnr")] == [10, 20, 30, 40]
    assert events.Scalars("final/psnr")[0].value == pytest.approx(result["psnr"])
    (image,) = events.Images("eval/reconstruction")[:1]
    assert image.width == 8 * image.height  # four originals, then their reconstructions
    assert "torch threads on" in log and "bf16 autocast off (amp=False: set explicitly)" in log
    losses = [
        float(line.split("loss ")[1].split()[0]) for line in log.splitlines() if " loss " in line
    ]
    assert result["psnr"] > 8.0
    release = tmp_path / "run" / "release"
    config = json.loads((release / "config.json").read_text())
    assert config["tokenizer"]["channels"] == [8, 16] and config["steps"] == 40
    card = (release / "card.md").read_text()
    assert "PSNR" in card and "bf16 autocast off (amp=False" in card
    model = load_tokenizer(release)
    assert not model.training and len(model.checksum) == 12
    if len(losses) >= 1:
        assert np.isfinite(losses).all()


def test_resume_continues_from_saved_step(store_dir, tmp_path):
    train_tokenizer(_train_cfg(store_dir, tmp_path / "run", steps=10))
    train_tokenizer(_train_cfg(store_dir, tmp_path / "run", steps=20))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resumed from step 10" in log and "finished: 20 steps" in log


def test_video_training_needs_matching_clip_length(store_dir, tmp_path):
    cfg = _train_cfg(
        store_dir, tmp_path, clip_frames=4, tokenizer={"temporal_factor": 4, "temporal_haar": True}
    )
    with pytest.raises(ValueError, match="clip_frames"):
        train_tokenizer(cfg)
    cfg.clip_frames, cfg.steps = 5, 4
    assert train_tokenizer(cfg)["steps"] == 4


def test_checkpoint_that_does_not_match_its_config_is_refused(tmp_path):
    save_tokenizer(tmp_path / "a", Tokenizer(tiny_config()))
    other = json.loads((tmp_path / "a" / "config.json").read_text())
    other["tokenizer"]["channels"] = [8, 24]
    (tmp_path / "a" / "config.json").write_text(json.dumps(other))
    with pytest.raises(checkpoint.CheckpointError, match="does not match its config"):
        load_tokenizer(tmp_path / "a")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        load_tokenizer(tmp_path / "missing")


def test_failed_save_keeps_the_previous_release(tmp_path):
    model = Tokenizer(tiny_config())
    save_tokenizer(tmp_path / "rel", model, card="first")

    class Broken(torch.nn.Module):
        def state_dict(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        checkpoint.save_release(tmp_path / "rel", Broken(), {"tokenizer": {}})
    assert (tmp_path / "rel" / "card.md").read_text() == "first"
    assert load_tokenizer(tmp_path / "rel").cfg.channels == [8, 16]
    assert [p.name for p in tmp_path.iterdir()] == ["rel"]  # no temporary leftovers


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_latent_cache_round_trip_and_staleness(store_dir, tmp_path, kind):
    torch.manual_seed(0)
    save_tokenizer(tmp_path / "tok", Tokenizer(tiny_config(kind=kind)))
    model = load_tokenizer(tmp_path / "tok")
    store_path = store_dir / "push.zarr"
    summary = encode_store(store_path, model)
    assert summary["key"].endswith(model.checksum) and model.cfg.name in summary["key"]
    store = EpisodeStore.open(store_path)
    cache = load_cache(store, model)
    assert cache.shape[0] == store.n_frames
    frames = torch.from_numpy(store.get_rows(3, 6, keys=["rgb"])["rgb"])
    expected = encode_frames(model, frames)
    if kind == "discrete":
        expected = model.fsq.codes_to_indices(expected.movedim(1, -1))
        np.testing.assert_array_equal(cache[3:6], expected.numpy())
    else:
        np.testing.assert_allclose(cache[3:6], expected.numpy(), atol=1e-5)
        assert decode_frames(model, torch.from_numpy(cache[3:6])).shape == (3, 32, 32, 3)
    assert encode_store(store_path, model)["skipped"] == "up to date"
    # New weights: the old cache must not be used for them.
    save_tokenizer(tmp_path / "tok2", Tokenizer(tiny_config(kind=kind)))
    with pytest.raises(StaleCacheError, match="made by other weights"):
        load_cache(store, load_tokenizer(tmp_path / "tok2"))
    # More episodes after encoding: the cache no longer covers the store.
    appended = EpisodeStore.open(store_path, "a")
    appended.append_episode(appended.load_episode(0))
    appended.finalize()
    with pytest.raises(StaleCacheError, match="episodes were added"):
        load_cache(EpisodeStore.open(store_path), model)


def test_video_tokenizer_cannot_fill_the_per_frame_cache(store_dir, tmp_path):
    save_tokenizer(tmp_path / "v", Tokenizer(tiny_config(temporal_factor=4, temporal_haar=True)))
    with pytest.raises(ValueError, match="image tokenizer"):
        encode_store(store_dir / "push.zarr", load_tokenizer(tmp_path / "v"))


def test_encode_command_fills_every_store(store_dir, tmp_path, capsys):
    from cosmos_env.__main__ import main

    save_tokenizer(tmp_path / "tok", Tokenizer(tiny_config(kind="discrete")))
    assert main(["encode", f"tokenizer={tmp_path / 'tok'}", f"data={store_dir}"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert len(summaries) == 2 and all(s["key"].startswith("tokens_CI8x8_") for s in summaries)
