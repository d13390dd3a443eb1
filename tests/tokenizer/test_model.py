import pytest
import torch
from conftest import randomised, tiny_config

from cosmos_env.config import load_config
from cosmos_env.tokenizer import Tokenizer, TokenizerConfig
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig


@pytest.mark.parametrize("name", ["CI8x8", "DI8x8", "CV4x8x8", "DV4x8x8"])
def test_named_configs_state_their_compression(name):
    cfg = load_config("train_tokenizer", TrainTokenizerConfig, [f"tokenizer={name}"]).tokenizer
    assert cfg.name == name
    assert cfg.spatial_factor == 8
    assert cfg.temporal_factor == (4 if "V" in name else 1)
    assert cfg.kind == ("discrete" if name.startswith("D") else "continuous")
    model = Tokenizer(cfg).eval()
    frames = 1 + 2 * cfg.temporal_factor
    with torch.no_grad():
        latent = model.encode(torch.zeros(1, 3, frames, 32, 48))
        assert latent.shape == (1, cfg.code_channels, 3, 4, 6)
        assert model.decode(latent).shape == (1, 3, frames, 32, 48)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"kind": "discrete"},
        {"temporal_factor": 4, "temporal_haar": True},
        {"temporal_factor": 2},
    ],
)
def test_encoding_is_causal(overrides):
    cfg = tiny_config(**overrides)
    model = randomised(cfg)
    st = cfg.temporal_factor
    video = torch.rand(2, 3, 1 + 4 * st, 16, 16) * 2 - 1
    with torch.no_grad():
        full = model.encode(video)
        for k in range(1, 5):
            prefix = model.encode(video[:, :, : 1 + k * st])
            torch.testing.assert_close(prefix, full[:, :, : k + 1], atol=1e-5, rtol=1e-4)
        # Changing a later frame leaves earlier latents untouched.
        changed = video.clone()
        changed[:, :, -1] = -changed[:, :, -1]
        torch.testing.assert_close(model.encode(changed)[:, :, :-1], full[:, :, :-1])


@pytest.mark.parametrize("overrides", [{}, {"temporal_factor": 4, "temporal_haar": True}])
def test_image_equals_one_frame_video(overrides):
    model = randomised(tiny_config(**overrides))
    image = torch.rand(3, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.encode(image), model.encode(image.unsqueeze(2)))


def test_discrete_tokens_round_trip():
    model = randomised(tiny_config(kind="discrete", fsq_levels=[8, 5, 5, 5]))
    video = torch.rand(2, 3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        tokens = model.tokenize(video)
        assert tokens.shape == (2, 1, 2, 2) and tokens.dtype == torch.int64
        assert tokens.max() < 1000
        torch.testing.assert_close(model.detokenize(tokens), model.decode(model.encode(video)))


def test_bad_inputs_name_the_problem():
    model = Tokenizer(tiny_config()).eval()
    with pytest.raises(ValueError, match="not divisible by the spatial factor 8"):
        model.encode(torch.zeros(1, 3, 1, 60, 64))
    video_model = Tokenizer(tiny_config(temporal_factor=4, temporal_haar=True)).eval()
    with pytest.raises(ValueError, match=r"1 \+ k\*4 frames"):
        video_model.encode(torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="float video"):
        model.encode(torch.zeros(1, 3, 1, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model.encode(torch.zeros(1, 4, 1, 16, 16))
    with pytest.raises(ValueError, match="continuous tokenizer"):
        model.tokenize(torch.zeros(1, 3, 1, 16, 16))
    with pytest.raises(ValueError, match="expected latent"):
        model.decode(torch.zeros(1, 5, 1, 2, 2))


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        TokenizerConfig(spatial_factor=6)
    with pytest.raises(ValueError, match="one entry per resolution"):
        TokenizerConfig(channels=[64, 128, 256])
    with pytest.raises(ValueError, match="kind"):
        TokenizerConfig(kind="vq")
    with pytest.raises(ValueError, match="unknown tokenizer config keys"):
        TokenizerConfig.from_dict({"name": "x", "colour": 1})


@pytest.mark.parametrize(
    "overrides", [{}, {"temporal_factor": 4, "temporal_haar": True}, {"temporal_factor": 2}]
)
def test_long_videos_encode_chunkwise_with_identical_latents(overrides):
    cfg = tiny_config(**overrides, temporal_window=2)
    model = randomised(cfg)
    st = cfg.temporal_factor
    video = torch.rand(1, 3, 1 + 9 * st, 16, 16) * 2 - 1
    with torch.no_grad():
        full = model.encode(video)
        for chunk in (1, 2, 3):
            torch.testing.assert_close(
                model.encode_long(video, chunk=chunk), full, atol=1e-5, rtol=1e-4
            )
