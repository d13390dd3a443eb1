"""``python -m cosmos_env train-dynamics dynamics=diffusion tokenizer=CI8x8 data=PATH``:
train the diffusion world model and its state probe on cached latents, with EMA weights,
resume, a progress bar and a log file; release the EMA weights with their tokenizer's name
and checksum and held-out reset frames."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cosmos_env.data.world import store_world
from cosmos_env.dynamics.data import (
    WindowBatcher,
    load_latent_episodes,
    outcome_columns,
    select_stores,
)
from cosmos_env.dynamics.diffusion.card import diffusion_card
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig
from cosmos_env.dynamics.evaluate import evaluate_dynamics
from cosmos_env.dynamics.release import release_training_run
from cosmos_env.dynamics.state_features import resolve_state_features
from cosmos_env.precision import autocast
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.training import (
    Board,
    budget_lr,
    file_logger,
    fit_machine,
    optimise,
    resume_training,
    save_training,
    update_ema,
)


def _lr(cfg: TrainDynamicsConfig, step: int, elapsed: float) -> float:
    return budget_lr(cfg.lr, cfg.warmup_steps, cfg.steps, cfg.max_minutes, step, elapsed)


def _unrolled_batch(
    model, batcher: WindowBatcher, cfg: TrainDynamicsConfig, rng, gen, amp: bool
) -> dict:
    """A batch whose last context latent is the model's own one-step prediction (no
    gradient through it), so training sees the errors an open-loop rollout feeds back."""
    b = batcher.sample_unrolled(cfg.batch_size, rng)
    states = torch.cat([b["context_states"], b["next_state"][:, None]], dim=1)  # (B, K+1, S)
    with autocast(amp):
        first = model.predict_next(b["context"], b["actions"], gen, 1, "euler", states=states)
    return {
        "context": torch.cat([b["context"][:, 1:], first.float()[:, None]], dim=1),
        "actions": torch.cat([b["actions"][:, 1:], b["next_action"][:, None]], dim=1),
        "target": b["target"],
        "target_state": b["target_state"],
        "context_states": states[:, 1:],
    }


def _extra_losses(model, batcher: WindowBatcher, cfg: TrainDynamicsConfig, rng) -> torch.Tensor:
    """The state track's and the outcome heads' losses on extra state-only windows
    (cheap: no latents), ``cfg.state_batch`` of them (at least 256 for the heads)."""
    total = torch.zeros(())
    size = max(cfg.state_batch, 256 if model.outcome is not None else 0)
    if not size or (model.state_dynamics is None and model.outcome is None):
        return total
    extra = batcher.sample_states(size, rng)
    targets = extra.pop("outcomes")
    if cfg.state_batch and model.state_dynamics is not None:
        total = total + model.state_loss(**extra)
    if model.outcome is not None:
        total = total + cfg.outcome_weight * model.outcome_loss(**extra, targets=targets)
    return total


def train_dynamics(cfg: TrainDynamicsConfig) -> dict:
    """Train, release to ``cfg.out/release`` and return the held-out metrics."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = file_logger("train_dynamics", out)
    amp = fit_machine(cfg.threads, cfg.amp, log)
    tokenizer = load_tokenizer(cfg.tokenizer)
    cfg.dynamics.latent_channels = tokenizer.cfg.code_channels  # shapes come from the data
    paths = select_stores(cfg.data, cfg.stores)
    train = load_latent_episodes(paths, tokenizer, "train", cfg.val_fraction, cfg.seed)
    val = load_latent_episodes(paths, tokenizer, "val", cfg.val_fraction, cfg.seed)
    h, w = train.latents.shape[-2:]
    if h != w:
        raise ValueError(f"the cached latents are {h}x{w}; the world model needs square frames")
    cfg.dynamics.latent_size = int(h)
    batcher = WindowBatcher(train, cfg.dynamics.context)
    world = store_world(paths)  # one world, action spec and state spec across the stores
    on = resolve_state_features(
        cfg.dynamics, world.state_spec, world.action_spec, train.states, cfg.state_features
    )
    outcomes = outcome_columns(paths) if cfg.dynamics.outcome_heads else ()
    log.info("world %s; state-track features %s; outcome heads on %s", world.name, on, outcomes)
    torch.manual_seed(cfg.seed)
    model = LatentDynamics(cfg.dynamics)
    sample = batcher.sample(min(16384, len(batcher)), np.random.default_rng(cfg.seed))
    last = sample["context"][:, -1]
    changes = sample["target_state"] - sample["context_states"][:, -1]  # (N, S), one step
    model.set_normalisation(last, sample["target"], torch.from_numpy(train.states), 1e-3, changes)
    if model.outcome is not None:
        model.outcome.set_normalisation(torch.from_numpy(train.outcomes[:, 0]))
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    step, elapsed = 0, 0.0
    state_path = out / "train_state.pt"
    if cfg.resume and state_path.exists():
        step, elapsed = resume_training(state_path, model, ema, opt, log)
        rng, gen = np.random.default_rng([cfg.seed, step]), gen.manual_seed(cfg.seed + step)
    log.info("config %s", asdict(cfg))
    log.info(
        "data: %d train windows, %d val frames; model %.2fM parameters",
        len(batcher),
        val.n_frames,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )

    def save_state() -> None:
        save_training(state_path, model, ema, opt, step, elapsed)

    board = Board(out)

    def run_eval(n_windows: int) -> dict[str, float]:
        samples: dict[str, torch.Tensor] = {}
        sampler, steps = cfg.sampler, cfg.sampler_steps
        scores = evaluate_dynamics(ema, tokenizer, val, n_windows, sampler, steps, samples=samples)
        log.info("step %d eval (EMA) %s", step, {k: round(v, 4) for k, v in scores.items()})
        board.scalars(step, scores, "eval")
        if "rollout" in samples:  # the truth's 16 frames, then the model's open loop
            board.frames(step, "eval/rollout", samples["rollout"])
        return scores

    start = time.perf_counter() - elapsed
    bar = tqdm(total=cfg.steps, initial=step, desc="train dynamics", unit="step")
    while step < cfg.steps and (time.perf_counter() - start) < cfg.max_minutes * 60:
        model.train()
        if rng.random() < cfg.unroll_fraction:
            batch = _unrolled_batch(model, batcher, cfg, rng, gen, amp)
        else:
            batch = batcher.sample(cfg.batch_size, rng, cfg.early_fraction, cfg.early_steps)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step, elapsed)
        with autocast(amp):
            losses = model.losses(**batch, generator=gen)
        total = losses["diffusion"] + cfg.probe_weight * losses["probe"]
        total = total + losses.get("state", 0.0)
        total = total + _extra_losses(model, batcher, cfg, rng)
        optimise(opt, total, model)
        update_ema(ema, model, step, cfg.ema_decay)
        step += 1
        elapsed = time.perf_counter() - start
        bar.update()
        bar.set_postfix(diffusion=f"{losses['diffusion'].item():.4f}")
        if step % 50 == 0:
            board.scalars(step, {**losses, "lr": _lr(cfg, step, elapsed)})
            log.info(
                "step %d diffusion %.5f probe %.5f state %.5f lr %.2e elapsed %.1f min",
                step,
                losses["diffusion"].item(),
                losses["probe"].item(),
                float(losses.get("state", torch.zeros(())).item()),
                _lr(cfg, step, elapsed),
                elapsed / 60,
            )
        if step % cfg.eval_every == 0:
            run_eval(cfg.eval_windows // 4)
        if step % cfg.save_every == 0:
            save_state()
    bar.close()
    save_state()
    wall = time.perf_counter() - start
    metrics = run_eval(cfg.eval_windows)
    log.info("finished: %d steps in %.1f min", step, wall / 60)
    card = diffusion_card(cfg, world, paths, train, step, wall, metrics)
    release_training_run(cfg, ema, tokenizer, paths, card, metrics, step, wall / 60, outcomes)
    log.info("released %s", out / "release")
    board.close()
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
