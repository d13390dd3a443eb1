"""Release integrity: config.json records the sha256 of every file a loader reads, loading
checks it (tokenizer, world model, BC policy), older releases warn, aliases stored once."""

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cosmos_env import checkpoint
from cosmos_env.checkpoint import PRETRAINED_DIR, CheckpointError, UnverifiedCheckpointWarning
from cosmos_env.dynamics.diffusion.base import load_base
from cosmos_env.dynamics.release import RESET_FILE, load_world_model
from cosmos_env.tokenizer.release import load_tokenizer
from policies.bc import BCPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHIPPED = {  # release -> its loader
    "CI8x8": load_tokenizer,
    "DI8x8": load_tokenizer,
    "CI8x8-general": load_tokenizer,
    "base-64": load_base,
    "diffusion-push": load_world_model,
    "ar-push": load_world_model,
    "bc-push/step_300": BCPolicy.load,
    "bc-push/step_1000": BCPolicy.load,
    "bc-push/step_3000": BCPolicy.load,
}


def copy_release(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(PRETRAINED_DIR / name, tmp_path / name.replace("/", "_")))


def overwrite_middle(path: Path, size: int = 64 * 2**10) -> None:
    """``size`` bytes of 0xFF written over the middle of ``path``; its length unchanged."""
    length = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(max(0, length // 2 - size // 2))
        f.write(b"\xff" * min(size, length))
    assert path.stat().st_size == length


def test_shipped_releases_record_the_digests_of_their_files():
    for name in SHIPPED:
        directory = PRETRAINED_DIR / name
        digests = checkpoint.read_config(directory)["sha256"]
        expected = {"model.safetensors"} | (
            {RESET_FILE} if (directory / RESET_FILE).exists() else set()
        )
        assert set(digests) == expected, name
        for file, digest in digests.items():
            assert hashlib.sha256((directory / file).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", ["CI8x8", "diffusion-push", "bc-push/step_300", "base-64"])
def test_corrupt_shipped_weights_are_refused(name, tmp_path):
    directory = copy_release(name, tmp_path)
    with warnings.catch_warnings(action="error"):
        SHIPPED[name](directory)  # the intact copy loads, without a warning
    overwrite_middle(directory / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        SHIPPED[name](directory)
    message = str(err.value)
    recorded = checkpoint.read_config(directory)["sha256"]["model.safetensors"]
    actual = checkpoint.file_sha256(directory / "model.safetensors")
    assert str(directory / "model.safetensors") in message
    assert recorded in message and actual in message and "re-download" in message


def test_corrupt_reset_frames_are_refused(tiny_world_model_dir, tmp_path):
    directory = Path(shutil.copytree(tiny_world_model_dir, tmp_path / "wm"))
    overwrite_middle(directory / RESET_FILE, size=2**10)
    with pytest.raises(CheckpointError, match=f"{RESET_FILE} is corrupt"):
        load_world_model(directory)


def test_garbage_reset_frames_of_an_unverified_release_name_the_file(
    tiny_world_model_dir, tmp_path
):
    directory = Path(shutil.copytree(tiny_world_model_dir, tmp_path / "wm"))
    config = checkpoint.read_config(directory)
    del config["sha256"][RESET_FILE]  # an older release: nothing to check the file against
    (directory / "config.json").write_text(json.dumps(config))
    (directory / RESET_FILE).write_bytes(b"not an npz archive" * 64)
    with pytest.warns(UnverifiedCheckpointWarning), pytest.raises(CheckpointError) as err:
        load_world_model(directory)
    assert f"{directory / RESET_FILE} is not a reset-frames archive" in str(err.value)


def test_save_release_records_every_file_it_writes(tmp_path):
    model = torch.nn.Linear(3, 2)
    checkpoint.save_release(tmp_path / "r", model, {"kind": "x"}, "# card\n", {"extra.bin": b"ab"})
    digests = checkpoint.read_config(tmp_path / "r")["sha256"]
    assert set(digests) == {"model.safetensors", "extra.bin"}
    assert digests["extra.bin"] == hashlib.sha256(b"ab").hexdigest()
    assert checkpoint.read_verified(tmp_path / "r", "extra.bin") == b"ab"
    loaded = torch.nn.Linear(3, 2)
    assert checkpoint.load_weights(tmp_path / "r", loaded) == digests["model.safetensors"]
    assert torch.equal(loaded.weight, model.weight)


def test_a_release_without_digests_warns_and_loads(tmp_path):
    directory = copy_release("bc-push/step_300", tmp_path)
    config = checkpoint.read_config(directory)
    del config["sha256"]
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.warns(UnverifiedCheckpointWarning, match="records no sha256 of model.safetensors"):
        policy = BCPolicy.load(directory)
    assert policy.net is not None
    checkpoint.record_digests(directory, ["model.safetensors"])  # files trusted: record them
    with warnings.catch_warnings(action="error"):
        BCPolicy.load(directory)


def test_shared_tensors_are_stored_once_and_restored(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(4, 4)
            self.b = self.a  # one module under two names, as SB3's shared feature extractor

    model = Tied()
    checkpoint.save_release(tmp_path / "t", model, {}, weights="float16")
    loaded = Tied()
    checkpoint.load_weights(tmp_path / "t", loaded)
    torch.testing.assert_close(loaded.b.weight, model.a.weight.half().float())
    assert loaded.a.weight is loaded.b.weight


def test_int8_weights_store_a_byte_per_value_and_load_back_within_half_a_step(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.LayerNorm(48))
    model[0].weight.data[3] = 0.0  # an all-zero row keeps a finite scale
    checkpoint.save_release(tmp_path / "f32", model, {})
    checkpoint.save_release(tmp_path / "i8", model, {}, weights="int8")
    stored = load_file(tmp_path / "i8" / "model.safetensors")
    assert stored["0.weight"].dtype == torch.int8 and stored["0.weight"].shape == (48, 64)
    assert stored["0.weight@scale"].shape == (48,)
    assert stored["0.bias"].dtype == torch.float16  # under INT8_MIN_NUMEL: float16
    assert stored["1.weight"].dtype == torch.float16
    assert checkpoint.read_config(tmp_path / "i8")["weights"] == "int8"
    sizes = [(tmp_path / d / "model.safetensors").stat().st_size for d in ("f32", "i8")]
    assert sizes[1] < 0.35 * sizes[0]

    loaded = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.LayerNorm(48))
    checkpoint.load_weights(tmp_path / "i8", loaded)
    step = model[0].weight.abs().amax(dim=1, keepdim=True) / 127
    error = (loaded[0].weight - model[0].weight).abs()
    assert torch.all(error <= step / 2 + 1e-7)
    assert torch.all(loaded[0].weight[3] == 0)
    torch.testing.assert_close(loaded[0].bias, model[0].bias.half().float())


def test_an_unknown_weight_format_is_refused_naming_the_formats(tmp_path):
    with pytest.raises(ValueError, match="weights='int4': the formats are float32, float16, int8"):
        checkpoint.save_release(tmp_path / "r", torch.nn.Linear(2, 2), {}, weights="int4")
    assert not (tmp_path / "r").exists()


def test_a_post_trained_release_keeps_the_scales_of_its_int8_tensors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 32))
    checkpoint.save_release(tmp_path / "r", model, {}, weights="int8", keys={"1.weight"})
    stored = load_file(tmp_path / "r" / "model.safetensors")
    assert set(stored) == {"1.weight", "1.weight@scale"}
    loaded = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 32))
    checkpoint.load_weights(tmp_path / "r", loaded, partial=True)
    torch.testing.assert_close(loaded[1].weight, model[1].weight, atol=0.01, rtol=0)
