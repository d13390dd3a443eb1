"""``python -m cosmos_env train-tokenizer tokenizer=CI8x8 data=PATH``: train a tokenizer with
L1 + MSE + image-gradient losses (+ temporal difference for video), EMA weights, resume,
a progress bar and a log file; release the EMA weights as model.safetensors + config.json."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cosmos_env.data.store import EpisodeStore
from cosmos_env.distributed import batch_text, helper_result, ranks
from cosmos_env.eval.metrics import psnr, ssim, to_uint8, to_unit
from cosmos_env.precision import amp_text, autocast
from cosmos_env.tokenizer.data import load_clips, store_paths
from cosmos_env.tokenizer.model import Tokenizer
from cosmos_env.tokenizer.release import load_tokenizer, save_tokenizer
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig
from cosmos_env.training import Board, file_logger, fit, fit_machine, reseeder


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def reconstruction_loss(
    pred: torch.Tensor, target: torch.Tensor, cfg: TrainTokenizerConfig
) -> dict[str, torch.Tensor]:
    """Losses on video (B, 3, T, H, W) in [-1, 1]; ``total`` is their weighted sum."""
    losses = {"l1": (pred - target).abs().mean(), "mse": (pred - target).pow(2).mean()}
    (pdy, pdx), (tdy, tdx) = _gradients(pred), _gradients(target)
    losses["grad"] = (pdy - tdy).abs().mean() + (pdx - tdx).abs().mean()
    total = losses["l1"] + cfg.mse_weight * losses["mse"] + cfg.grad_weight * losses["grad"]
    if pred.shape[2] > 1:
        pred_dt, target_dt = pred.diff(dim=2), target.diff(dim=2)
        losses["temporal"] = (pred_dt - target_dt).abs().mean()
        total = total + cfg.temporal_weight * losses["temporal"]
    losses["total"] = total
    return losses


@torch.no_grad()
def evaluate(model: Tokenizer, clips: np.ndarray, batch: int = 64) -> dict[str, float]:
    """PSNR / SSIM of reconstructions of uint8 clips (N, T, H, W, 3)."""
    model.eval()
    scores_psnr, scores_ssim = [], []
    for start in range(0, len(clips), batch):
        video = to_unit(torch.from_numpy(clips[start : start + batch])).transpose(1, 2)
        recon = model.decode(model.encode(video)).clamp(-1, 1)
        pred, target = recon.transpose(1, 2).flatten(0, 1), video.transpose(1, 2).flatten(0, 1)
        scores_psnr.append(psnr(pred, target))
        scores_ssim.append(ssim(pred, target))
    return {
        "psnr": torch.cat(scores_psnr).mean().item(),
        "ssim": torch.cat(scores_ssim).mean().item(),
    }


@torch.no_grad()
def sample_frames(model: Tokenizer, clips: np.ndarray, count: int = 4) -> torch.Tensor:
    """The first frames of ``count`` clips (uint8 (N, T, H, W, 3)), then their
    reconstructions: uint8 (2 * count, H, W, 3), for the training board."""
    video = to_unit(torch.from_numpy(clips[:count, :1])).transpose(1, 2)  # (B, 3, 1, H, W)
    recon = model.decode(model.encode(video)).clamp(-1, 1)
    return to_uint8(torch.cat([video, recon])[:, :, 0])


def _card(
    cfg: TrainTokenizerConfig, n_train: int, n_val: int, steps: int, wall: float, metrics: dict
) -> str:
    tok = cfg.tokenizer
    paths = store_paths(cfg.data)
    stores = ", ".join(p.name for p in paths)
    worlds = ", ".join(sorted({EpisodeStore.open(p).world for p in paths}))
    start = f", fine-tuned from {cfg.init}" if cfg.init else ""
    rate = ""
    if tok.kind == "discrete":
        bpp = math.log2(math.prod(tok.fsq_levels)) / tok.spatial_factor**2
        rate = (
            f"- Tokens: one per {tok.spatial_factor}x{tok.spatial_factor} patch, codebook "
            f"{math.prod(tok.fsq_levels)} (FSQ {tok.fsq_levels}), {bpp:.3f} bits per pixel\n"
        )
    return (
        f"# {tok.name}\n\n"
        f"{'Discrete (FSQ)' if tok.kind == 'discrete' else 'Continuous'} causal tokenizer, "
        f"{tok.temporal_factor}x{tok.spatial_factor}x{tok.spatial_factor} compression "
        f"(time x height x width), channels {tok.channels}.\n\n"
        f"- Data: {stores} (world {worlds}); {n_train} training clips of "
        f"{cfg.clip_frames} frame(s), {n_val} held-out clips (episode split, val_fraction "
        f"{cfg.val_fraction})\n"
        f"{rate}"
        f"- Training{start}: {steps} steps at batch {batch_text(cfg.batch_size)}, AdamW lr "
        f"{cfg.lr} cosine, EMA {cfg.ema_decay}, {amp_text(cfg.amp)}; wall time "
        f"{wall / 60:.1f} min on "
        f"{torch.get_num_threads()} CPU threads\n"
        f"- Held-out metrics (EMA weights): PSNR {metrics['psnr']:.2f} dB, "
        f"SSIM {metrics['ssim']:.4f}\n"
        f"- Reproduce: `python -m cosmos_env train-tokenizer tokenizer={tok.name} "
        f"data={cfg.data}{' init=' + cfg.init if cfg.init else ''}`\n"
    )


def _initial_model(cfg: TrainTokenizerConfig, log) -> Tokenizer:
    """A fresh tokenizer (seeded), or the released one ``cfg.init`` names to fine-tune,
    which must have the same architecture."""
    torch.manual_seed(cfg.seed)
    model = Tokenizer(cfg.tokenizer)
    if cfg.init:
        start_from = load_tokenizer(cfg.init)
        if start_from.cfg != cfg.tokenizer:
            raise ValueError(f"init={cfg.init} is a {start_from.cfg.name} with another config")
        model.load_state_dict(start_from.state_dict())
        log.info("fine-tuning from %s (weights %s)", cfg.init, start_from.checksum)
    return model


def train_tokenizer(cfg: TrainTokenizerConfig) -> dict:
    """Train, release to ``cfg.out`` and return the held-out metrics."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log, board = file_logger("train_tokenizer", out), Board(out)
    amp = fit_machine(cfg.threads, cfg.amp, log)
    tok_cfg = cfg.tokenizer
    if tok_cfg.is_video and (cfg.clip_frames - 1) % tok_cfg.temporal_factor:
        raise ValueError(f"clip_frames must be 1 + k*{tok_cfg.temporal_factor} for {tok_cfg.name}")
    train_clips = load_clips(cfg.data, "train", cfg.clip_frames, cfg.val_fraction)
    val_clips = load_clips(cfg.data, "val", cfg.clip_frames, cfg.val_fraction)
    val_eval = val_clips[
        np.linspace(0, len(val_clips) - 1, min(cfg.eval_frames, len(val_clips))).astype(int)
    ]
    model = _initial_model(cfg, log)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log.info("config %s", asdict(cfg))
    log.info(
        "data: %d train clips, %d val clips; model %.2fM parameters",
        len(train_clips),
        len(val_clips),
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    rng = np.random.default_rng(cfg.seed)

    def train_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = rng.integers(0, len(train_clips), cfg.batch_size)
        video = to_unit(torch.from_numpy(train_clips[idx])).transpose(1, 2)  # (B, 3, T, H, W)
        with autocast(amp):
            recon, _ = model(video)
        losses = reconstruction_loss(recon.float(), video, cfg)
        return losses["total"], {"loss": losses["total"].detach(), "l1": losses["l1"].detach()}

    def scores(step: int, final: bool) -> dict[str, float]:
        if final:  # every held-out clip
            return evaluate(ema, val_clips)
        board.frames(step, "eval/reconstruction", sample_frames(ema, val_eval))
        return evaluate(ema, val_eval)

    desc = f"train {tok_cfg.name}"
    step, wall, metrics = fit(
        cfg, model, ema, opt, out, log, board, train_step, scores, reseeder(cfg.seed, rng), desc
    )
    if not ranks().main:  # a data-parallel helper: rank 0 releases
        return helper_result(step, wall)
    log.info(
        "held-out (all %d val clips) psnr %.3f ssim %.4f",
        len(val_clips),
        metrics["psnr"],
        metrics["ssim"],
    )
    card = _card(cfg, len(train_clips), len(val_clips), step, wall, metrics)
    save_tokenizer(out / "release", ema, card, metrics=metrics, steps=step, wall_minutes=wall / 60)
    log.info("released %s", out / "release")
    board.close()
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
