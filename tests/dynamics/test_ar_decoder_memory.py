"""The AR model keeps its KV cache from one rollout step to the next (`DecoderMemory`): the
first step decodes as the stateless call does, the cache stays one context window long,
each new frame enters it as the transformer's own decoders put it there, and the rows of
a partial reset are prefilled anew so that they decode as a fresh rollout would (also
under guidance, where each row has an unconditioned twin)."""

import pytest
import torch
from test_ar_state_track import SIDE, A, B, K, N, model, window
from test_ar_text import RED
from test_ar_text import model as text_model

from cosmos_env.dynamics.decoder_memory import DecoderMemory
from cosmos_env.dynamics.rollout import initial_context, step_context

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS = 2  # MaskGIT passes


def sharpened(m):
    """Larger logits than a fresh init, so that argmax decoding has no near-ties that float
    rounding (a prefill at other RoPE times) could flip."""
    with torch.no_grad():
        for p in m.transformer.parameters():
            p.mul_(3.0)
    return m


def start(m, seed: int = 0, rows: int = B):
    w = window(seed)
    tokens, states = w["tokens"][:rows, :K], w["states"][:rows, :K]
    return initial_context(m, tokens, w["actions"][:rows, : K - 1], states), w


def actions(step: int, rows: int = B) -> torch.Tensor:
    return torch.rand(rows, A, generator=torch.Generator().manual_seed(100 + step)) * 2 - 1


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_the_first_step_decodes_as_the_stateless_call_and_keeps_the_cache(sampler):
    m = sharpened(model())
    ctx, _ = start(m)
    step_actions = ctx.with_action(actions(0))
    state = m.predict_next_state(ctx.states, step_actions)
    stateless = m.predict_next(
        ctx.latents, step_actions, None, STEPS, sampler, states=ctx.with_state(state)
    )
    tokens, _ = step_context(m, ctx, actions(0), None, STEPS, sampler)
    assert torch.equal(tokens, stateless)
    cache = ctx.memory.cache
    assert cache is not None and len(cache) == K * (N + 1) - 1
    assert cache.mode == ("block" if sampler == "parallel" else "causal")


def test_the_kept_cache_stays_one_window_long_and_moves_on_in_time():
    m = model()
    ctx, _ = start(m)
    times = []
    for t in range(4):
        step_context(m, ctx, actions(t), None, STEPS, "parallel")
        times.append(ctx.memory.cache.next_time)
        assert len(ctx.memory.cache) == K * (N + 1) - 1
    assert times == [K + 1, K + 2, K + 3, K + 4]


def test_each_step_extends_the_cache_as_the_transformers_decoder_does():
    m = sharpened(model())
    ctx, _ = start(m)
    ar = m.transformer
    # By hand: one prefill, then every frame decoded into the same cache.
    cache, states, context_actions = None, ctx.states, ctx.actions
    expected = []
    for t in range(3):
        step_actions = torch.cat([context_actions, actions(t)[:, None]], 1)
        state = m.predict_next_state(states, step_actions)
        cond = m.conditioning(m.standardise_state(torch.cat([states, state[:, None]], 1)))
        if cache is None:
            cache = ar.prefill(
                ctx.latents.flatten(2), step_actions[:, :-1], parallel=True, cond=cond[:, :-1]
            )
        expected.append(
            ar.decode_frame_parallel(
                cache, step_actions[:, -1], None, STEPS, temperature=0.0, cond=cond[:, -1]
            )
        )
        states = torch.cat([states[:, 1:], state[:, None]], 1)
        context_actions = step_actions[:, 1:]
    got = [step_context(m, ctx, actions(t), None, STEPS, "parallel")[0] for t in range(3)]
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g.flatten(1), e)


def test_reset_rows_are_prefilled_anew_and_decode_as_a_fresh_rollout():
    m = sharpened(model())
    ctx, _ = start(m, seed=0)
    kept, _ = start(m, seed=0)
    for t in range(3):
        step_context(m, ctx, actions(t), None, STEPS, "parallel")
        step_context(m, kept, actions(t), None, STEPS, "parallel")
    fresh, _ = start(m, seed=7, rows=1)
    ctx.set_rows(torch.tensor([1]), fresh)
    assert torch.equal(ctx.memory.stale, torch.tensor([1]))
    after, _ = step_context(m, ctx, actions(3), None, STEPS, "parallel")
    assert ctx.memory.stale is None
    # Row 0 went on from its kept cache, untouched by the reset of row 1.
    assert torch.equal(after[0], step_context(m, kept, actions(3), None, STEPS, "parallel")[0][0])
    # Row 1 decodes as a rollout that starts from its new context.
    assert torch.equal(
        after[1], step_context(m, fresh, actions(3)[1:], None, STEPS, "parallel")[0][0]
    )


def test_guided_rows_are_reset_with_their_unconditioned_twins():
    m = sharpened(text_model())
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 64000, (B, K, SIDE, SIDE), generator=g)
    ctx = initial_context(m, tokens, None, None, [RED] * B)
    for t in range(2):
        step_context(m, ctx, actions(t), None, STEPS, "parallel", guidance=3.0)
    assert ctx.memory.cache.batch_size == 2 * B and ctx.memory.cache.guidance == 3.0
    new_tokens = torch.randint(0, 64000, (1, K, SIDE, SIDE), generator=g)
    fresh = initial_context(m, new_tokens, None, None, [RED])
    ctx.set_rows(torch.tensor([0]), fresh)
    after, _ = step_context(m, ctx, actions(2), None, STEPS, "parallel", guidance=3.0)
    alone, _ = step_context(m, fresh, actions(2)[:1], None, STEPS, "parallel", guidance=3.0)
    assert torch.equal(after[0], alone[0])


def test_memory_marks_nothing_before_a_cache_exists():
    memory = DecoderMemory()
    memory.mark_stale(torch.tensor([0, 2]))
    assert memory.stale is None
    memory.cache = object()
    memory.mark_stale(torch.tensor([2]))
    memory.mark_stale(torch.tensor([0, 2]))
    assert torch.equal(memory.stale, torch.tensor([0, 2]))


def test_states_are_still_required_with_memory():
    m = model()
    w = window()
    with pytest.raises(ValueError, match=r"pass states \(B, K\+1, S\)"):
        m.predict_next(w["tokens"][:, :K], w["actions"], steps=2, memory=DecoderMemory())


def test_a_new_decoder_mid_rollout_starts_a_fresh_cache():
    m = sharpened(model())
    ctx, _ = start(m)
    for t in range(2):
        step_context(m, ctx, actions(t), None, STEPS, "parallel")
    step_actions = ctx.with_action(actions(2))
    states = ctx.with_state(m.predict_next_state(ctx.states, step_actions))
    stateless = m.predict_next(ctx.latents, step_actions, None, STEPS, "autoregressive", states)
    tokens, _ = step_context(m, ctx, actions(2), None, STEPS, "autoregressive")
    assert ctx.memory.cache.mode == "causal"
    assert torch.equal(tokens, stateless)
