"""Instruction conditioning in the autoregressive backend: cross-attention on the text in
every block (zero-initialised), the text kept in the KV cache (cached decoding equals the
uncached reference), classifier-free guidance on the logits by a doubled batch, and the
training losses reaching the text encoder."""

import pytest
import torch

from cosmos_env.dynamics.autoregressive import ARConfig, KVCache
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.autoregressive.transformer import ARTransformer
from cosmos_env.dynamics.conditioning import TextIds
from cosmos_env.dynamics.text_conditioning import TextConfig
from cosmos_env.text.encoder import TextEncoderConfig

B, SIDE, K, A = 2, 4, 3, 7
N = SIDE * SIDE
WORDS = ["blue", "bowl", "cube", "in", "put", "red", "the", "zone"]
RED, BLUE = "put the red cube in the bowl", "put the blue cube in the zone"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model(seed: int = 0, perturb: bool = True) -> TokenDynamics:
    text = TextConfig(TextEncoderConfig(width=16, depth=1, heads=2, max_len=8), WORDS)
    cfg = ARConfig(
        latent_size=SIDE, context=K, width=32, depth=2, heads=2, probe_width=8, state_dim=0,
        temperature=0.0, text=text,
    )  # fmt: skip
    torch.manual_seed(seed)
    m = TokenDynamics(cfg)
    if perturb:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def words(m: TokenDynamics, texts: list[str]) -> TextIds:
    return TextIds(*m.text.token_ids(texts))


def window(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 64000, (B, K + 1, SIDE, SIDE), generator=g)
    return tokens, torch.rand(B, K, A, generator=g) * 2 - 1


def test_a_fresh_model_reads_no_text_until_trained():
    m = model(perturb=False)
    tokens, actions = window()
    red = m.text.tokens(words(m, [RED] * B), B)
    blue = m.text.tokens(words(m, [BLUE] * B), B)
    a = m.transformer(tokens.flatten(2), actions, text=red)
    b = m.transformer(tokens.flatten(2), actions, text=blue)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)


def test_the_instruction_changes_the_logits_and_must_be_given():
    m = model()
    tokens, actions = window()
    red = m.text.tokens(words(m, [RED] * B), B)
    blue = m.text.tokens(words(m, [RED, BLUE]), B)
    a = m.transformer(tokens.flatten(2), actions, text=red)[0]
    b = m.transformer(tokens.flatten(2), actions, text=blue)[0]
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1], b[1], atol=1e-5)
    with pytest.raises(ValueError, match="follows instructions; pass text tokens"):
        m.transformer(tokens.flatten(2), actions)


def test_cached_decoding_with_text_equals_the_uncached_reference():
    m = model()
    ar = m.transformer
    tokens, actions = window()
    flat = tokens.flatten(2)
    text = m.text.tokens(words(m, [RED, BLUE]), B)
    cache = ar.prefill(flat[:, :1], actions[:, :0], text=text)
    kw = dict(temperature=0.8, top_k=5)
    new = ar.decode_frame(cache, actions[:, 0], torch.Generator().manual_seed(3), **kw)
    ref = ar.decode_frame_nocache(
        flat[:, :1], actions[:, :1], torch.Generator().manual_seed(3), text=text, **kw
    )
    assert torch.equal(new, ref)


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_guidance_is_classifier_free_on_the_text(sampler):
    m = model()
    tokens, actions = window()
    ctx, text = tokens[:, :K], words(m, [RED, BLUE])

    def predict(guidance: float, given=text) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return m.predict_next(ctx, actions, g, 2, sampler, text=given, guidance=guidance)

    plain = predict(1.0)
    assert plain.shape == (B, SIDE, SIDE)
    assert not torch.equal(plain, predict(1.0, None))  # no instruction: the null text
    assert not torch.equal(predict(4.0), plain)
    assert torch.equal(predict(4.0), predict(4.0))  # argmax decoding: deterministic


def test_guided_logits_combine_the_two_halves_of_the_cache():
    cond, uncond = torch.randn(B, 5, 8), torch.randn(B, 5, 8)
    cache = KVCache([torch.zeros(2 * B, 1, 0, 4)], [torch.zeros(2 * B, 1, 0, 4)], guidance=3.0)
    (out,) = ARTransformer._guided([torch.cat([cond, uncond])], cache)
    c, u = cond.log_softmax(-1), uncond.log_softmax(-1)
    torch.testing.assert_close(out, u + 3.0 * (c - u))
    assert torch.equal(ARTransformer._paired(torch.ones(B, 2), cache), torch.ones(2 * B, 2))


def test_cache_rows_carry_their_text():
    m = model()
    tokens, actions = window()
    flat = tokens.flatten(2)
    text = m.text.tokens(words(m, [RED, BLUE]), B)
    cache = m.transformer.prefill(flat[:, :K], actions[:, : K - 1], text=text)
    first = cache.index_select(torch.tensor([0]))
    torch.testing.assert_close(first.text[0], text[0][:1])
    swapped = m.transformer.prefill(
        flat[:, :K], actions[:, : K - 1], text=(text[0][[1, 0]], text[1][[1, 0]])
    )
    cache.set_rows(torch.tensor([0]), swapped.index_select(torch.tensor([0])))
    torch.testing.assert_close(cache.text[0][0], text[0][1])


def test_losses_reach_the_text_encoder():
    m = model().train()
    tokens, actions = window()
    losses = m.losses(
        tokens,
        actions,
        torch.zeros(B, K + 1, 0),
        torch.Generator().manual_seed(0),
        words(m, [RED, BLUE]),
    )
    (losses["ce"] + losses["parallel_ce"]).backward()
    assert m.text.encoder.embed.weight.grad.abs().sum() > 0
    assert m.transformer.blocks[0].cross.proj.weight.grad.abs().sum() > 0
