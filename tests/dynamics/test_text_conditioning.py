"""Instruction conditioning in the diffusion backend: cross-attention on text tokens, the
null text and classifier-free guidance on it, the config round trip, the guard in front."""

import numpy as np
import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.dynamics.conditioning import TextIds
from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.rollout import initial_context, rollout
from cosmos_env.dynamics.text_conditioning import (
    InstructionTable,
    TextConditioner,
    TextConfig,
    TextCrossAttention,
    vocabulary_words,
)
from cosmos_env.guardrails.text import TextRefused

B, C, S, K, A = 2, 4, 4, 2, 7
WORDS = ["blue", "bowl", "cube", "in", "put", "red", "the", "zone"]
TEXT = {"encoder": {"width": 16, "depth": 1, "heads": 2, "max_len": 8}, "words": WORDS}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def text_model(text=TEXT, perturb: bool = True) -> LatentDynamics:
    cfg = DiffusionConfig.from_dict(
        dict(latent_channels=C, latent_size=S, context=K, state_dim=0, **TINY_NET, text=text)
    )
    torch.manual_seed(0)
    model = LatentDynamics(cfg)
    if perturb:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def ids(model: LatentDynamics, texts: list[str]) -> TextIds:
    return TextIds(*model.text.token_ids(texts))


def predict(model, text, guidance=1.0, seed=0):
    g = torch.Generator().manual_seed(1)
    context, actions = torch.randn(B, K, C, S, S, generator=g), torch.rand(B, K, A, generator=g)
    gen = torch.Generator().manual_seed(seed)
    return model.predict_next(context, actions, gen, guidance=guidance, text=text)


def test_cross_attention_starts_as_the_identity_and_ignores_padding():
    attn = TextCrossAttention(8, 6, 2)
    x, text = torch.randn(B, 5, 8), torch.randn(B, 3, 6)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(attn(x, text, mask), x)  # zero output projection
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    out = attn(x, text, mask)
    assert not torch.allclose(out, x)
    changed = text.clone()
    changed[~mask] = 100.0  # what lies under the padding is never read
    torch.testing.assert_close(attn(x, changed, mask), out)


def test_a_fresh_text_model_predicts_the_same_for_every_instruction():
    """Zero-initialised cross-attention: a base that gains text conditioning predicts as
    before until post-training moves it."""
    model = text_model(perturb=False)
    a = predict(model, ids(model, ["put the red cube in the bowl"] * B))
    b = predict(model, ids(model, ["put the blue cube in the zone"] * B))
    torch.testing.assert_close(a, b)


def test_the_instruction_changes_the_prediction_row_by_row():
    model = text_model()
    red = predict(model, ids(model, ["put the red cube in the bowl"] * B))
    mixed = predict(model, ids(model, ["put the red cube in the bowl", "put the blue cube"]))
    torch.testing.assert_close(mixed[0], red[0])
    assert not torch.allclose(mixed[1], red[1], atol=1e-5)
    # No instruction is the null text.
    null = predict(model, None)
    assert not torch.allclose(null, red, atol=1e-5)


def test_guidance_pushes_away_from_the_unconditional_prediction():
    model = text_model()
    text = ids(model, ["put the red cube in the bowl"] * B)
    cond, uncond = predict(model, text), predict(model, None)
    guided = predict(model, text, guidance=3.0)
    assert not torch.allclose(guided, cond, atol=1e-5)
    # Scale 3 moves three times as far from the unconditional prediction as scale 1.
    assert (guided - uncond).abs().mean() > (cond - uncond).abs().mean()


def test_losses_train_the_text_encoder_and_cross_attention():
    model = text_model().train()
    g = torch.Generator().manual_seed(0)
    batch = {
        "context": torch.randn(B, K, C, S, S, generator=g),
        "actions": torch.rand(B, K, A, generator=g),
        "target": torch.randn(B, C, S, S, generator=g),
        "target_state": torch.zeros(B, 0),
    }
    text = ids(model, ["put the red cube in the bowl", "put the blue cube in the zone"])
    losses = model.losses(**batch, generator=torch.Generator().manual_seed(0), text=text)
    losses["diffusion"].backward()
    assert model.text.encoder.embed.weight.grad.abs().sum() > 0
    assert model.denoiser.net.blocks[0].cross.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="text has 1 rows for a batch of 2"):
        model.losses(**batch, text=TextIds(text.ids[:1], text.mask[:1]))


def test_config_round_trips_and_needs_its_vocabulary():
    model = text_model()
    cfg = DiffusionConfig.from_dict(model.cfg.to_dict())
    assert cfg == model.cfg and isinstance(cfg.text, TextConfig)
    assert cfg.text.encoder.width == 16
    with pytest.raises(ValueError, match="text.words is empty"):
        TextConditioner(TextConfig())
    with pytest.raises(ValueError, match=r"text.dropout must be in \[0, 1\)"):
        TextConfig(dropout=1.0)


def test_instructions_pass_the_guard_before_any_model_sees_them():
    model = text_model()
    with pytest.raises(TextRefused, match="nothing was generated"):
        model.text.token_ids(["put the red cube in the bowl", "kill the cube"])


def test_rollouts_carry_each_rows_instruction():
    model = text_model()
    g = torch.Generator().manual_seed(2)
    initial, actions = torch.randn(B, 1, C, S, S, generator=g), torch.rand(B, 3, A, generator=g)

    def roll(instructions, guidance=1.0):
        gen = torch.Generator().manual_seed(0)
        return rollout(model, initial, actions, gen, instructions=instructions, guidance=guidance)[
            0
        ]

    red = roll(["put the red cube in the bowl"] * B)
    mixed = roll(["put the red cube in the bowl", "put the blue cube in the zone"])
    torch.testing.assert_close(mixed[0], red[0])
    assert not torch.allclose(mixed[1], red[1], atol=1e-5)
    assert not torch.allclose(roll(["put the red cube in the bowl"] * B, 3.0), red, atol=1e-5)
    # A partial reset replaces a row's instruction with the rest of its context.
    ctx = initial_context(model, initial, instructions=["put the red cube"] * B)
    assert ctx.text.ids.shape == (B, 8)  # padded to the encoder's length
    other = initial_context(model, initial[:1], instructions=["put the blue cube in the zone"])
    ctx.set_rows(torch.tensor([1]), other)
    torch.testing.assert_close(ctx.text.ids[1], other.text.ids[0])
    with pytest.raises(ValueError, match="follows no instructions"):
        initial_context(text_model(text=None), initial, instructions=["put the red cube"] * B)


def test_training_windows_carry_their_episodes_instruction_ids():
    model = text_model()
    texts = ["put the red cube in the bowl", "put the blue cube in the zone"]
    assert vocabulary_words(texts + texts[:1]) == [
        "blue",
        "bowl",
        "cube",
        "in",
        "put",
        "red",
        "the",
        "zone",
    ]
    lengths = np.array([5, 7])
    episodes = LatentEpisodes(
        latents=np.arange(12, dtype=np.float16)[:, None, None, None] * np.ones((1, C, S, S)),
        actions=np.zeros((12, A), np.float32),
        states=np.zeros((12, 0), np.float32),
        starts=np.cumsum(lengths) - lengths,
        ends=np.cumsum(lengths),
        instructions=texts,
    )
    batcher = WindowBatcher(episodes, K)
    assert "text" not in batcher.sample(4, np.random.default_rng(0))
    batcher.instruction_ids = InstructionTable(model.text, episodes.instructions)
    batch = batcher.sample(64, np.random.default_rng(0))
    red, blue = (model.text.token_ids([t])[0][0] for t in texts)
    # Row r's latent holds its row index: rows 0-4 are episode 0's.
    first = batch["context"][:, -1, 0, 0, 0] < 5
    assert first.any() and (~first).any()
    assert (batch["text"].ids[first][:, : len(red)] == red).all()
    assert (batch["text"].ids[~first][:, : len(blue)] == blue).all()
    with pytest.raises(ValueError, match="have none: record them with task=instruct"):
        vocabulary_words(["", " "])
    with pytest.raises(ValueError, match="1 training episodes .* have no instruction"):
        InstructionTable(model.text, [texts[0], ""])
