"""Held-out scores of latent dynamics during training: next-frame PSNR after decoding,
open-loop rollout PSNR, and the state probe's position errors."""

from __future__ import annotations

import numpy as np
import torch

from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher
from cosmos_env.dynamics.model import LatentDynamics
from cosmos_env.dynamics.rollout import rollout
from cosmos_env.eval.metrics import position_errors_cm, psnr
from cosmos_env.tokenizer.model import Tokenizer


def _decode(tokenizer: Tokenizer, latents: torch.Tensor) -> torch.Tensor:
    """Latents (N, C, h, w) -> frames (N, 3, H, W) in [-1, 1]."""
    return tokenizer.decode(latents.unsqueeze(2))[:, :, 0].clamp(-1, 1)


def position_error_cm(pred: torch.Tensor, true: torch.Tensor, name: str) -> float:
    """Mean Euclidean error (cm) of the state slot ``name`` (a 3-d position)."""
    return float(position_errors_cm(pred.numpy(), true.numpy(), name).mean())


@torch.no_grad()
def evaluate_dynamics(
    model: LatentDynamics,
    tokenizer: Tokenizer,
    val: LatentEpisodes,
    n_windows: int,
    sampler: str,
    steps: int,
    horizon: int = 16,
    n_rollouts: int = 32,
) -> dict[str, float]:
    """Scores on held-out episodes with a fixed generator (comparable across evals)."""
    model.eval()
    gen = torch.Generator().manual_seed(0)
    batcher = WindowBatcher(val, model.cfg.context)
    idx = np.linspace(0, len(batcher) - 1, min(n_windows, len(batcher))).astype(int)
    batch = batcher.batch(idx)
    states = None
    if model.cfg.state_track:  # teacher forced: the true states of context and target
        states = torch.cat([batch["context_states"], batch["target_state"][:, None]], dim=1)
    pred = model.predict_next(
        batch["context"], batch["actions"], gen, steps, sampler, states=states
    )
    scores = {
        "psnr_next": psnr(_decode(tokenizer, pred), _decode(tokenizer, batch["target"]))
        .mean()
        .item(),
        "latent_mse_next": (pred - batch["target"]).pow(2).mean().item(),
    }
    true_state = batch["target_state"]
    probe_on_true = model.predict_state(batch["target"])
    scores["probe_cube_cm"] = position_error_cm(probe_on_true, true_state, "cube_pos")
    scores["probe_gripper_cm"] = position_error_cm(probe_on_true, true_state, "gripper_pos")
    # Open-loop rollouts from episode starts, the way the env runs.
    long = [i for i, (s, e) in enumerate(zip(val.starts, val.ends, strict=True)) if e - s > horizon]
    eps = np.asarray(long[:n_rollouts])
    if len(eps):
        starts = val.starts[eps]
        rows = starts[:, None] + np.arange(horizon + 1)
        latents = torch.from_numpy(val.latents[rows].astype(np.float32))
        actions = torch.from_numpy(val.actions[rows[:, :-1]])
        # Episodes start from a store frame with its true state, as the env's default reset.
        first_states = torch.from_numpy(val.states[rows[:, :1]])
        pred_roll, pred_states = rollout(
            model, latents[:, :1], actions, gen, steps, sampler, initial_states=first_states
        )
        last_pred = _decode(tokenizer, pred_roll[:, -1])
        last_true = _decode(tokenizer, latents[:, -1])
        scores[f"psnr_h{horizon}"] = psnr(last_pred, last_true).mean().item()
        states = torch.from_numpy(val.states[rows[:, -1]])
        scores[f"cube_cm_h{horizon}"] = position_error_cm(pred_states[:, -1], states, "cube_pos")
    return scores
