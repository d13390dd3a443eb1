"""Post-training from a pre-trained base: the post-trained model starts exactly as the base
(zero-initialised action and state embeddings, zero weights on new input channels, adapters
at zero), its release holds only what post-training changed, and rebuilding it on the base
reproduces it; a base of other weights, or data of another latent shape, is refused."""

import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.checkpoint import CheckpointError, read_config, save_release
from cosmos_env.dynamics.diffusion.base import (
    freeze_with_adapters,
    inherit_config,
    init_from_base,
    load_base,
    rebuild_post_trained,
    release_keys,
    save_base,
)
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.text_conditioning import TextConfig
from cosmos_env.sim.state_layout import tabletop_state_spec
from cosmos_env.text.encoder import TextEncoderConfig
from cosmos_env.tokenizer.release import load_tokenizer

B, C, S, K, A, D = 3, 4, 4, 2, 7, 36
CAMERA = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 1.0]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _perturbed(model: LatentDynamics, seed: int, only_trainable: bool = False) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # zero-initialised output layers would hide every input
        for p in model.parameters():
            if p.requires_grad or not only_trainable:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    cfg = DiffusionConfig.from_dict(
        dict(latent_channels=C, latent_size=S, context=K, action_dim=0, state_dim=0, **TINY_NET)
    )
    model = LatentDynamics(cfg)
    _perturbed(model, 0)
    with torch.no_grad():
        model.latent_mean.fill_(0.3), model.latent_std.fill_(2.0), model.delta_std.fill_(0.5)
    directory = tmp_path_factory.mktemp("base") / "release"
    save_base(directory, model, load_tokenizer("CI8x8"), "card", corpus={})
    return load_base(directory)


def _target() -> LatentDynamics:
    """A tabletop-like model the base lacks everything of: actions, a state track with
    keypoint maps (more input channels), a probe and outcome heads."""
    cfg = DiffusionConfig.from_dict(
        dict(
            latent_channels=C,
            latent_size=S,
            context=K,
            action_dim=A,
            **TINY_NET,
            state_track=True,
            state_width=16,
            keypoints=["gripper_pos", "cube_pos"],
            camera=CAMERA,
            outcome_heads=True,
            outcome_width=8,
            state_spec=tabletop_state_spec().to_dict(),
        )
    )
    return LatentDynamics(cfg)


def _inputs(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    context = torch.randn(B, K, C, S, S, generator=gen)
    actions = torch.rand(B, K, A, generator=gen) * 2 - 1
    states = torch.rand(B, K + 1, D, generator=gen)
    return context, actions, states


def _next(model, context, actions, states=None):
    return model.predict_next(context, actions, torch.Generator().manual_seed(5), states=states)


@pytest.mark.parametrize("rank", [0, 4])
def test_a_post_trained_model_starts_as_its_base(base, rank):
    model = _target()
    assert model.denoiser.net.embed.in_features > base.model.denoiser.net.embed.in_features
    copied = init_from_base(model, base)
    if rank:
        trainable = freeze_with_adapters(model, copied, rank)
        assert (
            any("lora_a" in n for n in trainable) and "denoiser.net.embed.weight" not in trainable
        )
        assert any(n.startswith("denoiser.net.action_embedding") for n in trainable)
    context, actions, states = _inputs()
    ours = _next(model.eval(), context, actions, states)
    theirs = _next(base.model, context, actions[..., :0])
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.latent_std, base.model.latent_std)


def test_the_release_holds_only_what_post_training_changed_and_rebuilds_exactly(base, tmp_path):
    model = _target()
    freeze_with_adapters(model, init_from_base(model, base), 4)
    _perturbed(model, 3, only_trainable=True)  # as training would move them
    keys = release_keys(model)
    assert not any(k.endswith(".base.weight") for k in keys)  # the frozen base stays out
    assert "denoiser.net.blocks.0.attn.qkv.lora_b" in keys and "state_mean" in keys
    save_release(tmp_path / "r", model, {"dynamics": model.cfg.to_dict()}, keys=keys)
    record = {**base.reference(), "adapter_rank": 4}
    rebuilt = rebuild_post_trained(tmp_path / "r", model.cfg, record).eval()
    assert not any("lora" in k for k in rebuilt.state_dict())  # adapters merged
    context, actions, states = _inputs(2)
    torch.testing.assert_close(
        _next(rebuilt, context, actions, states),
        _next(model.eval(), context, actions, states),
        rtol=1e-4,
        atol=1e-4,
    )
    wrong = {**record, "checksum": "0123456789ab"}
    with pytest.raises(CheckpointError, match="installed base has weights"):
        rebuild_post_trained(tmp_path / "r", model.cfg, wrong)


def test_a_base_refuses_data_of_another_latent_shape_and_a_world_model_is_no_base(base, tmp_path):
    target = DiffusionConfig.from_dict(dict(latent_channels=C, latent_size=2 * S, **TINY_NET))
    with pytest.raises(ValueError, match=r"pre-trained on 4x4 latents .* are 8x8"):
        inherit_config(target, base.cfg)
    model = _target()
    save_release(tmp_path / "wm", model, {"dynamics": model.cfg.to_dict()})
    with pytest.raises(CheckpointError, match="not a pre-trained base"):
        load_base(tmp_path / "wm")
    assert read_config(base.directory)["kind"] == "world-foundation-model"


def test_a_base_quantized_to_int8_is_still_a_base_under_a_new_checksum(base, tmp_path):
    from cosmos_env.dynamics.quantize import QuantizeConfig, quantize_release

    result = quantize_release(QuantizeConfig(str(base.directory), str(tmp_path / "q")))
    quantized = load_base(tmp_path / "q")
    raw = read_config(tmp_path / "q")
    assert raw["weights"] == "int8" and raw["corpus"] == {} and raw["tokenizer"] == base.tokenizer
    assert quantized.checksum != base.checksum  # post-training names the base it started from
    assert 0 < result["max_relative_rms_error"] < 0.02
    assert (tmp_path / "q" / "card.md").read_text().startswith("card\n## Weights: int8")
    context, actions, _ = _inputs(2)
    torch.testing.assert_close(
        _next(quantized.model, context, actions[..., :0]),
        _next(base.model, context, actions[..., :0]),
        rtol=0.05,
        atol=0.05,
    )


def test_the_shipped_base_names_the_shipped_tokenizer_it_was_pre_trained_on():
    shipped = load_base("base-64")
    tokenizer = load_tokenizer(shipped.tokenizer["source"])
    assert shipped.tokenizer["source"] == "CI8x8-general"  # by name: paths differ per install
    assert tokenizer.checksum == shipped.tokenizer["checksum"]
    assert shipped.cfg.action_dim == 0 and shipped.cfg.state_dim == 0
    assert shipped.cfg.latent_size * tokenizer.cfg.spatial_factor == 64


def test_layers_the_base_lacks_train_whole_beside_the_adapters(base):
    cfg = _target().cfg
    cfg.text = TextConfig(TextEncoderConfig(width=8, depth=1, heads=2), ["push", "the", "cube"])
    model = LatentDynamics(cfg)
    trainable = freeze_with_adapters(model, init_from_base(model, base), 4)
    cross = model.denoiser.net.blocks[0].cross
    assert isinstance(cross.proj, torch.nn.Linear)  # no adapter on the new cross-attention
    assert "denoiser.net.blocks.0.cross.proj.weight" in trainable
    assert "denoiser.net.blocks.0.attn.qkv.base.weight" not in trainable  # the base's: frozen
    assert any(n.startswith("text.") for n in trainable)
