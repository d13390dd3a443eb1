"""Training windows (padding at episode starts, anchors, actions) and the rollout context
(padding, shifting, partial resets) that the envs share with training."""

import numpy as np
import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher, window_rows
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.rollout import LatentContext, rollout

C, S, A = 2, 4, 7


# Tiny models: one thread avoids oversubscription when other jobs share the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def episodes(lengths=(3, 1, 6, 2)) -> LatentEpisodes:
    """Row i has latent value i and action value i + 1 (never 0), state value 10 * i."""
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    rows = np.arange(n, dtype=np.float32)
    return LatentEpisodes(
        latents=np.broadcast_to(rows[:, None, None, None], (n, C, S, S)).astype(np.float16),
        actions=np.repeat(rows[:, None] + 1, A, axis=1),
        states=np.repeat(rows[:, None] * 10, 36, axis=1),
        starts=ends - np.asarray(lengths),
        ends=ends,
    )


def test_window_rows_pad_episode_starts():
    t = np.array([0, 1, 5, 12, 20])
    starts = np.array([0, 0, 3, 10, 10])
    rows, valid = window_rows(t, starts, 4)
    np.testing.assert_array_equal(
        rows,
        [[0, 0, 0, 0], [0, 0, 0, 1], [3, 3, 4, 5], [10, 10, 11, 12], [17, 18, 19, 20]],
    )
    np.testing.assert_array_equal(
        valid,
        [
            [False, False, False, True],
            [False, False, True, True],
            [False, True, True, True],
            [False, True, True, True],
            [True, True, True, True],
        ],
    )
    rows1, valid1 = window_rows(t, starts, 1)
    np.testing.assert_array_equal(rows1[:, 0], t)
    assert valid1.all()


def test_batcher_anchors_have_a_successor_in_their_episode():
    ep = episodes()
    batcher = WindowBatcher(ep, context=3)
    assert len(batcher) == sum(e - s - 1 for s, e in zip(ep.starts, ep.ends, strict=True))
    last_rows = set((ep.ends - 1).tolist())
    assert not last_rows & set(batcher.anchor_rows.tolist())
    # Every anchor lies inside the episode whose start it records.
    episode_of = np.searchsorted(ep.ends, batcher.anchor_rows, side="right")
    np.testing.assert_array_equal(ep.starts[episode_of], batcher.anchor_starts)
    batch = batcher.sample(500, np.random.default_rng(0))
    t = batch["context"][:, -1, 0, 0, 0].numpy().astype(int)
    assert not set(t.tolist()) & last_rows
    np.testing.assert_array_equal(batch["target"][:, 0, 0, 0].numpy(), t + 1)


def test_batch_windows_pad_with_the_first_latent_and_zero_actions():
    ep = episodes()
    batcher = WindowBatcher(ep, context=3)
    batch = batcher.batch(np.arange(len(batcher)))
    n = len(batcher)
    assert batch["context"].shape == (n, 3, C, S, S) and batch["context"].dtype == torch.float32
    assert batch["actions"].shape == (n, 3, A) and batch["target"].shape == (n, C, S, S)
    assert batch["target_state"].shape == (n, 36)
    ctx_rows = batch["context"][:, :, 0, 0, 0].numpy().astype(int)  # (n, K) row ids
    rows, valid = window_rows(batcher.anchor_rows, batcher.anchor_starts, 3)
    np.testing.assert_array_equal(ctx_rows, rows)
    actions = batch["actions"].numpy()
    np.testing.assert_array_equal(actions[~valid], 0.0)  # padding rows: no action
    np.testing.assert_array_equal(actions[valid][:, 0], ctx_rows[valid] + 1)
    # Anchor at an episode's first row: all older rows repeat it.
    first = batcher.anchor_rows == batcher.anchor_starts
    assert first.any()
    assert (ctx_rows[first] == batcher.anchor_rows[first, None]).all()
    np.testing.assert_array_equal(
        batch["target_state"][:, 0].numpy(), (batcher.anchor_rows + 1) * 10.0
    )


def test_one_row_episodes_give_no_windows():
    assert len(WindowBatcher(episodes((1, 1)), context=2)) == 0
    assert len(WindowBatcher(episodes((1, 2, 1)), context=2)) == 1


# ----------------------------------------------------------------------------- rollout context


def _latents(b, k):
    """(b, k, C, S, S) latents whose value is 10 * row + frame."""
    values = torch.arange(b)[:, None] * 10 + torch.arange(k)[None]
    return values[:, :, None, None, None].float().expand(b, k, C, S, S).clone()


def test_context_pads_with_the_first_latent():
    ctx = LatentContext(_latents(2, 2), context=4, action_dim=A)
    assert ctx.latents.shape == (2, 4, C, S, S) and ctx.actions.shape == (2, 3, A)
    np.testing.assert_array_equal(ctx.latents[:, :, 0, 0, 0], [[0, 0, 0, 1], [10, 10, 10, 11]])
    assert torch.count_nonzero(ctx.actions) == 0
    one = LatentContext(_latents(1, 1), context=3, action_dim=A)
    np.testing.assert_array_equal(one.latents[0, :, 0, 0, 0], [0, 0, 0])
    full = LatentContext(_latents(1, 3), context=3, action_dim=A)
    np.testing.assert_array_equal(full.latents[0, :, 0, 0, 0], [0, 1, 2])
    longer = LatentContext(_latents(1, 5), context=3, action_dim=A)
    np.testing.assert_array_equal(longer.latents[0, :, 0, 0, 0], [2, 3, 4])


def test_context_push_shifts_latents_and_actions():
    ctx = LatentContext(_latents(2, 1), context=3, action_dim=A)
    a1 = torch.full((2, A), 0.5)
    step = ctx.with_action(a1)
    assert step.shape == (2, 3, A)
    torch.testing.assert_close(step[:, -1], a1)
    assert torch.count_nonzero(step[:, :-1]) == 0
    ctx.push(torch.full((2, C, S, S), 7.0), step)
    np.testing.assert_array_equal(ctx.latents[:, :, 0, 0, 0], [[0, 0, 7], [10, 10, 7]])
    a2 = torch.full((2, A), -0.25)
    step2 = ctx.with_action(a2)
    torch.testing.assert_close(step2[:, 1], a1)
    torch.testing.assert_close(step2[:, 2], a2)
    ctx.push(torch.full((2, C, S, S), 8.0), step2)
    np.testing.assert_array_equal(ctx.latents[0, :, 0, 0, 0], [0, 7, 8])
    torch.testing.assert_close(ctx.actions, torch.stack([a1, a2], dim=1))


def test_context_set_rows_replaces_only_those_rows():
    ctx = LatentContext(_latents(3, 2), context=3, action_dim=A)
    ctx.push(torch.full((3, C, S, S), 5.0), ctx.with_action(torch.ones(3, A)))
    before_latents, before_actions = ctx.latents.clone(), ctx.actions.clone()
    new = LatentContext(_latents(1, 1) + 100, context=3, action_dim=A)
    ctx.set_rows(torch.tensor([1]), new)
    np.testing.assert_array_equal(ctx.latents[1, :, 0, 0, 0], [100, 100, 100])
    assert torch.count_nonzero(ctx.actions[1]) == 0
    for row in (0, 2):
        assert torch.equal(ctx.latents[row], before_latents[row])
        assert torch.equal(ctx.actions[row], before_actions[row])


def test_context_made_in_inference_mode_can_be_partly_reset_outside_it():
    """The envs step under ``torch.inference_mode`` and reset sub-envs outside it."""
    ctx = LatentContext(_latents(2, 1), context=2, action_dim=A)
    with torch.inference_mode():
        ctx.push(torch.zeros(2, C, S, S), ctx.with_action(torch.ones(2, A)))
    ctx.set_rows(torch.tensor([0]), LatentContext(_latents(1, 1) + 3, context=2, action_dim=A))
    np.testing.assert_array_equal(ctx.latents[:, :, 0, 0, 0], [[3, 3], [10, 0]])
    np.testing.assert_array_equal(ctx.actions[:, 0, 0], [0, 1])


def test_rollout_feeds_predictions_back_as_context():
    torch.manual_seed(0)
    cfg = DiffusionConfig.from_dict(
        dict(
            latent_channels=C,
            latent_size=S,
            context=3,
            **TINY_NET,
        )
    )
    model = LatentDynamics(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    initial = torch.randn(2, 1, C, S, S)
    actions = torch.rand(2, 4, A) * 2 - 1
    out, states = rollout(model, initial, actions, torch.Generator().manual_seed(3))
    assert out.shape == (2, 4, C, S, S)
    assert states.shape == (2, 4, cfg.state_dim)
    # The same thing by hand: padded window, zero actions before the first step.
    gen = torch.Generator().manual_seed(3)
    window = [initial[:, 0]] * 3
    acts = [torch.zeros(2, A)] * 2
    for t in range(4):
        step_actions = torch.stack(acts + [actions[:, t]], dim=1)
        nxt = model.predict_next(torch.stack(window, dim=1), step_actions, gen)
        torch.testing.assert_close(out[:, t], nxt)
        torch.testing.assert_close(states[:, t], model.predict_state(nxt))  # no track: probe
        window = window[1:] + [nxt]
        acts = acts[1:] + [actions[:, t]]
    again, _ = rollout(model, initial, actions, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)


def test_context_places_known_past_actions_next_to_their_frames():
    from cosmos_env.dynamics.rollout import LatentContext

    latents = torch.randn(2, 3, 4, 2, 2)
    past = torch.arange(2 * 2 * 7, dtype=torch.float32).view(2, 2, 7)
    ctx = LatentContext(latents, context=4, action_dim=7, past_actions=past)
    assert torch.equal(ctx.latents[:, 1:], latents) and torch.equal(
        ctx.latents[:, 0], latents[:, 0]
    )
    assert torch.equal(ctx.actions[:, 0], torch.zeros(2, 7))  # before the padding row: unknown
    assert torch.equal(ctx.actions[:, 1:], past)
    with pytest.raises(ValueError, match="past actions"):
        LatentContext(latents, context=4, action_dim=7, past_actions=past[:, :1])


def test_unrolled_windows_reach_two_rows_past_the_context():
    n = 30  # three episodes of 10 rows; every row's value is its index
    latents = np.arange(n, dtype=np.float16)[:, None, None, None] * np.ones((1, 2, 2, 2))
    actions = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 7), np.float32)
    states = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 36), np.float32)
    episodes = LatentEpisodes(
        latents.astype(np.float16), actions, states, np.array([0, 10, 20]), np.array([10, 20, 30])
    )
    batch = WindowBatcher(episodes, 4).sample_unrolled(256, np.random.default_rng(0))
    last = batch["context"][:, -1, 0, 0, 0]
    assert torch.equal(batch["next_action"][:, 0], last + 1)
    assert torch.equal(batch["target"][:, 0, 0, 0], last + 2)
    assert torch.equal(batch["target_state"][:, 0], last + 2)
    assert int((last % 10).max()) == 7  # t + 2 stays inside the episode
