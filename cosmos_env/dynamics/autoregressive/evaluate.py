"""Held-out scores of the autoregressive world model during training: teacher-forced and
parallel (MaskGIT) cross-entropy and token accuracy, the state probe's position errors,
and the sampled next frame's token accuracy and its state errors (the track's next state
where the model has one, else the probe's reading of the sampled frame)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from cosmos_env.dynamics.autoregressive.data import TokenWindowBatcher
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.data import LatentEpisodes
from cosmos_env.dynamics.evaluate import named_positions
from cosmos_env.eval.metrics import position_errors_cm


def _summed_scores(
    model: TokenDynamics, batch: dict, gen: torch.Generator, sampler: str, steps: int
) -> dict[str, float]:
    """Scores of one batch of windows, summed over its windows (losses: batch mean x B)."""
    tokens, states = batch["tokens"], batch["states"][:, -1].numpy()  # (B, F, h, w), (B, S)
    n = len(tokens)
    losses = model.losses(**batch, generator=gen)
    scores = {
        k: losses[k].item() * n for k in ("ce", "accuracy", "parallel_ce", "parallel_accuracy")
    }
    probe = model.predict_state(tokens[:, -1]).numpy()
    track, cond = None, None
    if model.state_dynamics is not None:  # the frame drawn for the track's next state
        context_states = batch["states"][:, :-1]
        track = model.predict_next_state(context_states, batch["actions"])
        cond = torch.cat([context_states, track[:, None]], dim=1)
    pred = model.predict_next(tokens[:, :-1], batch["actions"], gen, steps, sampler, states=cond)
    on_pred = model.predict_state(pred).numpy() if track is None else track.numpy()
    std = model.state_std.numpy()
    errors = {
        "probe_state_std_err": (np.abs(probe - states) / std).mean(1),
        "sampled_accuracy": (pred == tokens[:, -1]).float().mean((1, 2)).numpy(),
        "state_std_err_next": (np.abs(on_pred - states) / std).mean(1),
    }
    for name, index in named_positions(model).items():  # the StateSpec's end effector, objects
        errors[f"probe_{name}_cm"] = position_errors_cm(probe, states, index)
        errors[f"{name}_cm_next"] = position_errors_cm(on_pred, states, index)
    return {**scores, **{k: float(v.sum()) for k, v in errors.items()}}


@torch.no_grad()
def evaluate_ar(
    model: TokenDynamics,
    val: LatentEpisodes,
    n_windows: int,
    sampler: str = "parallel",
    steps: int = 8,
    chunk: int = 64,
) -> dict[str, float]:
    """Scores on up to ``n_windows`` held-out windows spread evenly over ``val``, with a
    fixed generator (comparable across evals), in chunks of ``chunk`` windows.

    ``ce``/``accuracy``: teacher-forced, over frames 1..K of each window (accuracy = all
    digits right); ``parallel_*``: MaskGIT losses on the last frame; ``probe_*_cm``: the
    probe on the true last frame; ``sampled_accuracy`` and ``cube_cm_next``: the next
    frame sampled with ``sampler``/``steps`` (token accuracy, probed cube error in cm).
    """
    model.eval()
    gen = torch.Generator().manual_seed(0)
    batcher = TokenWindowBatcher(val, model.cfg.context)
    idx = np.linspace(0, len(batcher) - 1, min(n_windows, len(batcher))).astype(int)
    totals: dict[str, float] = defaultdict(float)
    for part in np.array_split(idx, -(-len(idx) // chunk)):
        for key, value in _summed_scores(model, batcher.batch(part), gen, sampler, steps).items():
            totals[key] += value
    return {key: value / len(idx) for key, value in totals.items()}
