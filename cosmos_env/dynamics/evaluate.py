"""Held-out scores of latent dynamics during training: next-frame PSNR after decoding,
open-loop rollout PSNR, and state errors: in standardised units for every world, and in
centimetres for the positions its StateSpec names (end effector, objects)."""

from __future__ import annotations

import numpy as np
import torch

from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.rollout import rollout
from cosmos_env.dynamics.state_features import config_state_spec
from cosmos_env.eval.metrics import position_errors_cm, psnr, to_uint8
from cosmos_env.tokenizer.model import Tokenizer


def _decode(tokenizer: Tokenizer, latents: torch.Tensor) -> torch.Tensor:
    """Latents (N, C, h, w) -> frames (N, 3, H, W) in [-1, 1]."""
    return tokenizer.decode(latents.unsqueeze(2))[:, :, 0].clamp(-1, 1)


def position_error_cm(pred: torch.Tensor, true: torch.Tensor, index: slice) -> float:
    """Mean Euclidean error (cm) of the 3-d position at state dims ``index``."""
    return float(position_errors_cm(pred.numpy(), true.numpy(), index).mean())


def named_positions(model) -> dict[str, slice]:
    """The StateSpec's named positions (``StateSpec.named_positions``) of ``model``'s
    config (either backend)."""
    return config_state_spec(model.cfg).named_positions()


def state_scores(model, pred: torch.Tensor, true: torch.Tensor, prefix: str) -> dict[str, float]:
    """Errors of predicted states (B, S) against true ones: the mean absolute error in
    units of each dim's std (``<prefix>state_std_err``) and, per named position,
    ``<prefix><name>_cm``."""
    err = ((pred - true).abs() / model.state_std).mean().item()
    scores = {f"{prefix}state_std_err": err}
    for name, index in named_positions(model).items():
        scores[f"{prefix}{name}_cm"] = position_error_cm(pred, true, index)
    return scores


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
    samples: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Scores on held-out episodes with a fixed generator (comparable across evals). A
    ``samples`` dict receives "rollout": the first open-loop rollout's frames beside the
    truth's, uint8 (2 * horizon, H, W, 3) (truth first), for the training board."""
    model.eval()
    gen = torch.Generator().manual_seed(0)
    scores = _next_frame_scores(model, tokenizer, val, n_windows, sampler, steps, gen)
    return scores | _rollout_scores(
        model, tokenizer, val, sampler, steps, gen, horizon, n_rollouts, samples
    )


def _next_frame_scores(
    model: LatentDynamics,
    tokenizer: Tokenizer,
    val: LatentEpisodes,
    n_windows: int,
    sampler: str,
    steps: int,
    gen: torch.Generator,
) -> dict[str, float]:
    """One-step scores on ``n_windows`` evenly spaced held-out windows: next-frame PSNR
    and latent MSE (teacher-forced states), and the probe's errors on the true latents."""
    batcher = WindowBatcher(val, model.cfg.context)
    idx = np.linspace(0, len(batcher) - 1, min(n_windows, len(batcher))).astype(int)
    batch = batcher.batch(idx)
    states = None
    if model.cfg.state_track:  # teacher forced: the true states of context and target
        states = torch.cat([batch["context_states"], batch["target_state"][:, None]], dim=1)
    pred = model.predict_next(
        batch["context"], batch["actions"], gen, steps, sampler, states=states
    )
    next_psnr = psnr(_decode(tokenizer, pred), _decode(tokenizer, batch["target"]))
    scores = {
        "psnr_next": next_psnr.mean().item(),
        "latent_mse_next": (pred - batch["target"]).pow(2).mean().item(),
    }
    if model.cfg.state_dim > 0:  # an action-free base has no state
        probe_on_true = model.predict_state(batch["target"])
        scores |= state_scores(model, probe_on_true, batch["target_state"], "probe_")
    return scores


def _rollout_scores(
    model: LatentDynamics,
    tokenizer: Tokenizer,
    val: LatentEpisodes,
    sampler: str,
    steps: int,
    gen: torch.Generator,
    horizon: int,
    n_rollouts: int,
    samples: dict[str, torch.Tensor] | None,
) -> dict[str, float]:
    """Open-loop rollouts of ``horizon`` steps from episode starts, the way the env runs:
    PSNR at the horizon beside copy-last, and state errors there."""
    long = [i for i, (s, e) in enumerate(zip(val.starts, val.ends, strict=True)) if e - s > horizon]
    eps = np.asarray(long[:n_rollouts])
    if not len(eps):
        return {}
    rows = val.starts[eps][:, None] + np.arange(horizon + 1)
    latents = torch.from_numpy(val.latents[rows].astype(np.float32))
    actions = torch.from_numpy(val.actions[rows[:, :-1]])
    # Episodes start from a store frame with its true state, as the env's default reset.
    first_states = torch.from_numpy(val.states[rows[:, :1]])
    pred_roll, pred_states = rollout(
        model, latents[:, :1], actions, gen, steps, sampler, initial_states=first_states
    )
    last_true = _decode(tokenizer, latents[:, -1])
    if samples is not None:
        both = torch.cat([latents[0, 1:], pred_roll[0]])  # (2T, C, h, w)
        samples["rollout"] = to_uint8(_decode(tokenizer, both))
    scores = {
        f"psnr_h{horizon}": psnr(_decode(tokenizer, pred_roll[:, -1]), last_true).mean().item()
    }
    copy = _decode(tokenizer, latents[:, 0])  # the copy-last-frame baseline
    scores[f"copy_last_h{horizon}"] = psnr(copy, last_true).mean().item()
    if model.cfg.state_dim == 0:
        return scores
    at_h = state_scores(model, pred_states[:, -1], torch.from_numpy(val.states[rows[:, -1]]), "")
    scores |= {f"{k.removesuffix('_cm')}_cm_h{horizon}": v for k, v in at_h.items() if "_cm" in k}
    scores[f"state_std_err_h{horizon}"] = at_h["state_std_err"]
    return scores
