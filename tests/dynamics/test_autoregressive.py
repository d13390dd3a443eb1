"""Autoregressive dynamics: token digits, the factorised transformer's shapes, losses,
causal and block-causal masks, KV-cache decoding against the uncached reference, the
parallel (MaskGIT) mode, token sampling and config validation."""

import math

import pytest
import torch

from cosmos_env.dynamics.autoregressive import (
    ARConfig,
    ARTransformer,
    KVCache,
    digits,
    filter_logits,
    indices,
    sample_logits,
)
from cosmos_env.dynamics.autoregressive.losses import token_losses
from cosmos_env.tokenizer.fsq import FSQ

B, S, K, A = 2, 4, 3, 7  # batch, token grid side, context frames, action dim
N = S * S
LEVELS = [8, 8, 8, 5, 5, 5]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(seed: int = 0, **overrides) -> ARTransformer:
    base = dict(latent_size=S, context=K, width=32, depth=2, heads=2, probe_width=8)
    base.update(overrides)
    torch.manual_seed(seed)
    return ARTransformer(ARConfig(**base)).eval()


def batch(frames: int = K + 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, math.prod(LEVELS), (B, frames, N), generator=g)
    actions = torch.rand(B, frames - 1, A, generator=g) * 2 - 1
    return tokens, actions


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----- digits ----------------------------------------------------------------------------


def test_digits_round_trip_and_match_fsq():
    fsq = FSQ(LEVELS)
    idx = torch.cat([torch.tensor([0, 1, 7, 8, 63999]), torch.randint(0, 64000, (500,))])
    d = digits(idx, LEVELS)  # (M, 6)
    assert d.shape == (len(idx), 6)
    assert (d.max(0).values < torch.tensor(LEVELS)).all() and (d >= 0).all()
    assert torch.equal(indices(d, LEVELS), idx)
    half = torch.tensor([lv // 2 for lv in LEVELS])
    codes = fsq.indices_to_codes(idx)
    assert torch.equal(torch.round(codes * half + half).long(), d)  # the same digit order
    assert torch.equal(fsq.codes_to_indices((d - half).float() / half), idx)
    assert digits(torch.tensor([8 + 3 * 64 + 2 * 12800]), LEVELS).tolist() == [[0, 1, 3, 0, 0, 2]]


# ----- network and losses ----------------------------------------------------------------


def test_logits_and_loss_shapes_at_init():
    model = tiny_model()
    tokens, actions = batch()
    logits = model(tokens, actions)
    assert [tuple(lg.shape) for lg in logits] == [(B, K, N, lv) for lv in LEVELS]
    for out in (model.loss(tokens, actions), model.loss_parallel(tokens, actions, gen())):
        assert set(out) == {"loss", "ce", "z_loss", "accuracy"}
        assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
        # Near-uniform logits at init: CE close to the sum of log(levels).
        assert out["ce"].item() == pytest.approx(sum(math.log(lv) for lv in LEVELS), rel=0.05)
        assert 0 < out["z_loss"].item() < 1e-2
        assert out["loss"].item() == pytest.approx((out["ce"] + out["z_loss"]).item())


def test_loss_decreases_on_a_fixed_batch():
    model = tiny_model().train()
    tokens, actions = batch()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = model.loss(tokens, actions)
        par = model.loss_parallel(tokens, actions, gen())
        opt.zero_grad()
        (out["loss"] + par["loss"]).backward()
        opt.step()
        losses.append((out["loss"].item(), par["loss"].item()))
    assert all(math.isfinite(a) and math.isfinite(b) for a, b in losses)
    assert losses[-1][0] < 0.8 * losses[0][0]
    assert losses[-1][1] < 0.8 * losses[0][1]


def test_accuracy_counts_tokens_with_all_digits_right():
    target = torch.tensor([5, 64000 - 1])
    d = digits(target, LEVELS)
    logits = [torch.nn.functional.one_hot(d[:, i], lv).float() * 10 for i, lv in enumerate(LEVELS)]
    assert token_losses(logits, target, LEVELS, 0.0)["accuracy"].item() == 1.0
    logits[3][1] = logits[3][1].roll(1)  # one digit of the second token wrong
    assert token_losses(logits, target, LEVELS, 0.0)["accuracy"].item() == 0.5


def test_causal_mask():
    model = tiny_model()
    tokens, actions = batch()
    base = model(tokens, actions)
    changed = tokens.clone()
    j = 5
    changed[:, 2, j] = (changed[:, 2, j] + 1) % 64000  # frame 2, slot j
    after = model(changed, actions)
    for lg0, lg1 in zip(base, after, strict=True):  # (B, K, N, l) for frames 1..K
        assert torch.equal(lg0[:, 0], lg1[:, 0])  # frame 1 untouched
        assert torch.allclose(lg0[:, 1, : j + 1], lg1[:, 1, : j + 1], atol=1e-6)  # slots <= j
        assert not torch.allclose(lg0[:, 1, j + 1 :], lg1[:, 1, j + 1 :])  # later slots see it
        assert not torch.allclose(lg0[:, 2], lg1[:, 2])  # later frames see it
    moved = actions.clone()
    moved[:, 1] = -moved[:, 1]  # the action leading to frame 2
    after = model(tokens, moved)
    assert all(torch.equal(a[:, 0], b[:, 0]) for a, b in zip(base, after, strict=True))
    assert not torch.allclose(base[0][:, 1, 0], after[0][:, 1, 0])


def test_block_causal_parallel_mask():
    model = tiny_model()
    tokens, actions = batch()
    masked = torch.zeros(B, N, dtype=torch.bool)
    masked[:, ::2] = True
    base = model.forward_parallel(tokens, actions, masked)
    assert [tuple(lg.shape) for lg in base] == [(B, N, lv) for lv in LEVELS]
    changed = tokens.clone()
    changed[:, -1, N - 1] = (changed[:, -1, N - 1] + 1) % 64000  # an unmasked, late slot
    after = model.forward_parallel(changed, actions, masked)
    # Every position of the frame sees it, the earliest included.
    assert not torch.allclose(base[0][:, 0], after[0][:, 0])
    # Earlier frames' hidden states never do.
    x0, pos = model._embed_sequence(tokens, actions, masked)
    x1, _ = model._embed_sequence(changed, actions, masked)
    h0, h1 = model._run(x0, pos, block=True), model._run(x1, pos, block=True)
    frames_before = K * N + K  # f0..f_{K-1} and their actions, a_{K-1} included
    assert torch.equal(h0[:, : frames_before - 1], h1[:, : frames_before - 1])
    assert not torch.allclose(h0[:, frames_before - 1], h1[:, frames_before - 1])  # a_{K-1}
    # A masked token's value is hidden from everything.
    hidden = tokens.clone()
    hidden[:, -1, 0] = (hidden[:, -1, 0] + 1) % 64000
    again = model.forward_parallel(hidden, actions, masked)
    assert all(torch.equal(a, b) for a, b in zip(base, again, strict=True))


def test_cached_parallel_logits_match_the_full_sequence():
    model = tiny_model()
    tokens, actions = batch()
    masked = torch.rand(B, N, generator=gen(1)) < 0.5
    cache = model.prefill(tokens[:, :K], actions[:, : K - 1], parallel=True)
    cached = model.predict_masked(cache, actions[:, -1], tokens[:, -1], masked)
    full = model.forward_parallel(tokens, actions, masked)
    for a, b in zip(cached, full, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert len(cache) == K * N + K - 1  # predict_masked caches nothing


# ----- decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7, "top_k": 3, "top_p": 0.9}])
def test_cached_decoding_equals_uncached(kw):
    model = tiny_model()
    tokens, actions = batch()
    cache = model.prefill(tokens[:, :1], actions[:, :0])
    g_cached, g_ref = gen(3), gen(3)
    frames = tokens[:, :1]
    for t in range(2):  # two frames: the cache grows through the whole first one
        new = model.decode_frame(cache, actions[:, t], g_cached, **kw)
        ref = model.decode_frame_nocache(frames, actions[:, : t + 1], g_ref, **kw)
        assert new.shape == (B, N) and new.dtype == torch.long
        assert torch.equal(new, ref)
        frames = torch.cat([frames, new[:, None]], 1)
    assert len(cache) == 3 * N + 2 and cache.next_time == 3


def test_decoding_is_seeded():
    model = tiny_model()
    tokens, actions = batch()

    def decode(seed: int, parallel: bool = False) -> torch.Tensor:
        cache = model.prefill(tokens[:, :K], actions[:, : K - 1], parallel=parallel)
        if parallel:
            return model.decode_frame_parallel(cache, actions[:, -1], gen(seed), steps=4)
        return model.decode_frame(cache, actions[:, -1], gen(seed))

    for parallel in (False, True):
        assert torch.equal(decode(0, parallel), decode(0, parallel))
        assert not torch.equal(decode(0, parallel), decode(1, parallel))


def test_decode_frame_keeps_a_window_of_context_frames():
    model = tiny_model()
    tokens, actions = batch()
    cache = model.prefill(tokens[:, :K], actions[:, : K - 1], start_time=5)
    full = K * N + K - 1
    assert len(cache) == full and cache.next_time == 5 + K
    before = [k.clone() for k in cache.keys]
    model.decode_frame(cache, actions[:, -1], gen())
    assert len(cache) == full and cache.next_time == 6 + K  # the oldest frame dropped
    for old, new in zip(before, cache.keys, strict=True):  # the rest kept as it was
        assert torch.equal(new[:, :, : full - N - 1], old[:, :, N + 1 :])


def test_parallel_decoding():
    model = tiny_model()
    tokens, actions = batch()
    with pytest.raises(ValueError, match="parallel=True"):
        model.decode_frame_parallel(
            model.prefill(tokens[:, :K], actions[:, : K - 1]), actions[:, -1]
        )
    cache = model.prefill(tokens[:, :2], actions[:, :1], parallel=True)
    out = model.decode_frame_parallel(cache, actions[:, 1], gen(), steps=5, choice_temperature=1.0)
    assert out.shape == (B, N) and out.min() >= 0 and out.max() < 64000
    assert len(cache) == 3 * N + 2 and cache.next_time == 3
    # The committed frame is in the cache as prefill would have put it.
    ref = model.prefill(torch.cat([tokens[:, :2], out[:, None]], 1), actions[:, :2], parallel=True)
    for a, b in zip(cache.keys, ref.keys, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    # Masks shrink on the cosine schedule and a decided token is never re-masked.
    seen = []
    predict = model.predict_masked
    model.predict_masked = lambda c, a, t, m, *cond: seen.append(m.clone()) or predict(c, a, t, m)
    cache = model.prefill(tokens[:, :2], actions[:, :1], parallel=True)
    model.decode_frame_parallel(cache, actions[:, 1], gen(), steps=4, choice_temperature=2.0)
    del model.predict_masked
    counts = [N] + [math.floor(N * math.cos(math.pi / 2 * s / 4)) for s in (1, 2, 3)]
    assert [m.sum(1).tolist() for m in seen] == [[c] * B for c in counts]
    assert all((later <= earlier).all() for earlier, later in zip(seen[:-1], seen[1:], strict=True))
    # Greedy with one step: every token the argmax of the all-masked prediction.
    cache = model.prefill(tokens[:, :2], actions[:, :1], parallel=True)
    logits = model.predict_masked(cache, actions[:, 1], tokens[:, 2], torch.ones(B, N).bool())
    greedy = indices(torch.stack([lg.argmax(-1) for lg in logits], -1), LEVELS)
    assert torch.equal(
        model.decode_frame_parallel(cache, actions[:, 1], steps=1, temperature=0), greedy
    )


def test_kv_cache_crop_and_rows():
    keys = [torch.arange(2 * 1 * 6 * 2.0).view(2, 1, 6, 2)]
    cache = KVCache(keys, [k + 100 for k in keys], next_time=4)
    cache.crop_front(4)
    assert len(cache) == 2 and torch.equal(cache.keys[0], keys[0][:, :, 4:])
    assert torch.equal(cache.values[0], keys[0][:, :, 4:] + 100)
    with pytest.raises(ValueError, match="cannot crop"):
        cache.crop_front(3)
    model = tiny_model()
    tokens, actions = batch()
    other_tokens, other_actions = batch(seed=1)
    cache = model.prefill(tokens[:, :2], actions[:, :1], start_time=3)
    fresh = model.prefill(other_tokens[:, :2], other_actions[:, :1], start_time=3)
    cache.set_rows(torch.tensor([1]), fresh.index_select(torch.tensor([1])))
    mixed = model.prefill(
        torch.stack([tokens[0, :2], other_tokens[1, :2]]),
        torch.stack([actions[0, :1], other_actions[1, :1]]),
        start_time=3,
    )
    for a, b in zip(cache.keys + cache.values, mixed.keys + mixed.values, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert cache.index_select(torch.tensor([True, False])).batch_size == 1
    with pytest.raises(ValueError, match="start_time"):
        cache.set_rows(torch.tensor([0]), model.prefill(tokens[:1, :2], actions[:1, :1]))


def test_bad_inputs_name_the_problem():
    model = tiny_model()
    tokens, actions = batch()
    with pytest.raises(ValueError, match="actions must be"):
        model.loss(tokens, actions[:, :-1])
    with pytest.raises(ValueError, match="tokens must be"):
        model.loss(tokens[..., :-1], actions)
    with pytest.raises(ValueError, match="must lie in"):
        model.loss(tokens + 64000, actions)
    with pytest.raises(ValueError, match="at most context"):
        model.prefill(tokens, actions)
    cache = model.prefill(tokens[:, :1], actions[:, :0], parallel=True)
    with pytest.raises(ValueError, match="parallel=False"):
        model.decode_frame(cache, actions[:, 0])
    with pytest.raises(ValueError, match="action must be"):
        model.decode_frame_parallel(cache, actions[:, 0, :3])


# ----- sampling --------------------------------------------------------------------------


def test_top_k_one_and_temperature_zero_are_argmax():
    logits = torch.randn(50, 8, generator=gen())
    assert torch.equal(sample_logits(logits, gen(), top_k=1), logits.argmax(-1))
    g = gen(7)
    assert torch.equal(sample_logits(logits, g, temperature=0), logits.argmax(-1))
    assert torch.equal(g.get_state(), gen(7).get_state())  # nothing drawn


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])  # ranked: 1, 3, 0, 2
    logits = probs.log()[None]
    for p, kept in [(0.5, {1}), (0.8, {1, 3}), (0.81, {0, 1, 3}), (0.96, {0, 1, 2, 3})]:
        finite = torch.isfinite(filter_logits(logits, top_p=p))[0]
        assert set(finite.nonzero()[:, 0].tolist()) == kept, p
    draws = sample_logits(logits.expand(2000, 4), gen(), top_p=0.8)
    assert set(draws.unique().tolist()) == {1, 3}
    assert (draws == 1).float().mean().item() == pytest.approx(0.5 / 0.8, abs=0.05)
    top2 = torch.isfinite(filter_logits(logits, top_k=2))[0]
    assert top2.tolist() == [False, True, False, True]


def test_sampling_is_seeded_and_shaped():
    logits = torch.zeros(3, 4, 64)
    a, b = sample_logits(logits, gen(0)), sample_logits(logits, gen(0))
    assert a.shape == (3, 4) and a.dtype == torch.long and torch.equal(a, b)
    assert not torch.equal(a, sample_logits(logits, gen(1)))
    with pytest.raises(ValueError, match="top_p"):
        sample_logits(logits, gen(), top_p=0.0)


# ----- config ----------------------------------------------------------------------------


def test_config_round_trip_and_validation():
    cfg = ARConfig(latent_size=S, width=32, heads=2)
    assert ARConfig.from_dict(cfg.to_dict()) == cfg
    assert ARConfig().vocab_size == 64000 and ARConfig().tokens_per_frame == 64
    with pytest.raises(ValueError, match="unknown autoregressive config keys.*'wdith'"):
        ARConfig.from_dict({**cfg.to_dict(), "wdith": 3})
    bad = [
        (dict(width=30, heads=4), "not divisible by heads"),
        (dict(width=36, heads=4), "must be even and >= 6"),
        (dict(levels=[8, 1]), "levels"),
        (dict(context=0), "context must be >= 1"),
        (dict(mask_prob_min=0.6, mask_prob_max=0.5), "mask_prob_min"),
        (dict(z_loss=-1.0), "z_loss"),
        (dict(kind="diffusion"), "kind"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            ARConfig(**kwargs)
