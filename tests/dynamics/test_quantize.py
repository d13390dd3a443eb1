"""``quantize``: a world model re-released with int8 weights loads, keeps its pairing,
record and files, says so in its card, and predicts nearly what the original does."""

import json
import shutil

import numpy as np
import pytest
import torch

from cosmos_env import checkpoint
from cosmos_env.dynamics.quantize import QuantizeConfig, quantize_release
from cosmos_env.dynamics.release import load_world_model
from cosmos_env.envs.world_model_env import WorldModelEnv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(directory, seed=0):
    env = WorldModelEnv(checkpoint=str(directory))
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(3):
        frames.append(env.step(np.full(env.action_space.shape, 0.3, np.float32))[0])
    return np.stack(frames).astype(np.float32)


def test_a_quantized_world_model_keeps_its_record_and_predicts_nearly_the_same(
    tiny_world_model_dir, tmp_path
):
    source = shutil.copytree(tiny_world_model_dir, tmp_path / "src")
    (source / "train.log").write_text("step 1\n")
    config = checkpoint.read_config(source)
    config["outcomes"] = ["reward"]
    (source / "config.json").write_text(json.dumps(config))
    (source / "card.md").write_text("# tiny\n")

    result = quantize_release(QuantizeConfig(checkpoint=str(source), out=str(tmp_path / "q")))
    out = tmp_path / "q"
    assert result["weights"] == "float16 -> int8"
    assert result["megabytes"][1] < result["megabytes"][0]
    assert 0 < result["max_relative_rms_error"] < 0.02
    new = checkpoint.read_config(out)
    assert new["weights"] == "int8" and new["outcomes"] == ["reward"]
    assert new["tokenizer"] == config["tokenizer"] and new["world"] == config["world"]
    assert (out / "train.log").read_text() == "step 1\n"
    card = (out / "card.md").read_text()
    assert card.startswith("# tiny\n") and "## Weights: int8" in card
    a, b = load_world_model(source), load_world_model(out)
    np.testing.assert_array_equal(a.reset_frames, b.reset_frames)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(a.dynamics.parameters(), b.dynamics.parameters(), strict=True)
    )
    difference = np.abs(_frames(source) - _frames(out)).mean()
    assert difference < 2.0  # of 255: int8 weights change the frames by little


def test_quantize_refuses_an_unknown_format(tiny_world_model_dir, tmp_path):
    source = shutil.copytree(tiny_world_model_dir, tmp_path / "src")
    with pytest.raises(ValueError, match="the formats are float32, float16, int8"):
        quantize_release(QuantizeConfig(str(source), str(tmp_path / "q"), weights="int4"))
    assert not (tmp_path / "q").exists()
