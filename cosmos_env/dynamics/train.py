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

from cosmos_env.config import TrainDynamicsConfig
from cosmos_env.data.world import store_world
from cosmos_env.dynamics.config import DynamicsConfig
from cosmos_env.dynamics.data import (
    LatentEpisodes,
    WindowBatcher,
    load_latent_episodes,
    outcome_columns,
    select_stores,
)
from cosmos_env.dynamics.evaluate import evaluate_dynamics
from cosmos_env.dynamics.model import LatentDynamics
from cosmos_env.dynamics.release import release_training_run
from cosmos_env.dynamics.state_features import resolve_state_features
from cosmos_env.precision import amp_text, autocast
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.training import (
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


def _state_track_text(d: DynamicsConfig) -> str:
    """The card's sentences on the state track of dynamics config ``d``."""
    if not d.state_track:
        return " Reward and success are scored on the probe's state."
    text = (
        f" A state track carries the task state: an MLP (width {d.state_width}) predicts "
        "the next state from the context's states and actions, and the denoiser is "
        "conditioned on the context's and the next frame's states (two MLPs, as for the "
        f"actions; training adds noise up to {d.state_noise} std to them). Reward and "
        "success are scored on that state (the world's functions, or the outcome heads); "
        "the probe starts the track when a reset gives frames only."
    )
    if d.ee_slot:
        text += (
            f" The {d.ee_slot} slot is moved exactly by the end-effector delta actions "
            "(scaled to the store's action range) and clipped to the "
            "training states' range; the MLP learns only the rest."
        )
    if d.state_relative:
        text += (
            f" The MLP also reads contact features: the offsets of "
            f"{', '.join(d.state_relative)} from {d.ee_slot} in every context frame and "
            "their last one-step motion."
        )
    if d.frame_objects:
        text += (
            f" The planar motion of {', '.join(d.frame_objects)} comes from a head (width "
            f"{d.frame_width}) that sees the scene in the frame of {d.frame_quat}'s yaw, "
            "where a push looks the same in every direction (`dynamics/gripper_frame.py`)."
        )
    if d.keypoint_channels:
        text += (
            f" The positions {', '.join(d.keypoints)} of every state are also drawn as "
            "Gaussian blobs on the token grid through the camera's projection and "
            "read with the frames."
        )
    if d.outcome_heads:
        text += (
            " Outcome heads (an MLP, width "
            f"{d.outcome_width}) learn reward, termination and success from the state "
            "before and after each step and its action, for what the world does not define."
        )
    return text


def _card(
    cfg: TrainDynamicsConfig, world, paths, train: LatentEpisodes, steps, wall, metrics
) -> str:
    d = cfg.dynamics
    mlp = "Mix-FFN (depthwise 3x3 conv) MLPs" if d.conv_mlp else "plain MLPs"
    lines = [
        f"# Diffusion world model: {world.name}",
        "",
        f"An EDM denoiser over {d.latent_channels}x{d.latent_size}x{d.latent_size} latents of "
        f"the tokenizer `{Path(cfg.tokenizer).name if '/' in cfg.tokenizer else cfg.tokenizer}` "
        f"(its weights checksum is in config.json; another tokenizer is refused). Network: a "
        f"DiT (width {d.width}, depth {d.depth}, {d.heads} heads, patch {d.patch}, {mlp}, "
        f"RMS-normalised Q/K, factorised position embeddings, AdaLN-LoRA rank {d.adaln_rank}) "
        f"over the 64 tokens of the next frame, with {d.context} context latents concatenated "
        "along channels; the noise level and the actions condition it through AdaLN (one "
        "action MLP adds to the noise embedding, one to the shared AdaLN term). It diffuses "
        "the standardised change from the last context latent. A convolutional state probe "
        f"reads the {d.state_dim}-d state from a latent." + _state_track_text(d),
        "",
        f"- Data: {', '.join(p.name for p in paths)} (world {world.name}); "
        f"{train.n_frames} training frames in {len(train.starts)} "
        f"episodes, held-out split val_fraction {cfg.val_fraction}",
        f"- Training: {steps} steps at batch {cfg.batch_size} ({cfg.early_fraction:.0%} of each "
        f"batch from the first {cfg.early_steps} steps of episodes), AdamW lr {cfg.lr} cosine, "
        f"EMA {cfg.ema_decay}, log-normal sigmas (P_mean {d.p_mean}, P_std {d.p_std}), context "
        f"noise up to {d.context_noise}, action dropout {d.action_dropout}, "
        f"{amp_text(cfg.amp)}"
        + (f", {cfg.state_batch} extra state-track windows per step" if cfg.state_batch else "")
        + f"; wall time {wall / 60:.1f} min on {torch.get_num_threads()} CPU threads",
        f"- Sampler: {cfg.sampler}, {cfg.sampler_steps} step(s) on the Karras schedule "
        f"(sigma_max {d.sigma_max})",
        "- Held-out windows at the end of training (EMA weights; PSNR against the tokenizer's "
        "reconstruction, h16 = open loop from episode starts, <name>_cm_h16 = the model's "
        "own state at h16): " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
        f"- Reproduce: `python -m cosmos_env train-dynamics dynamics=diffusion "
        f"tokenizer={cfg.tokenizer} data={cfg.data} stores='{cfg.stores}'`",
    ]
    return "\n".join(lines) + "\n"


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

    def run_eval(n_windows: int) -> dict[str, float]:
        scores = evaluate_dynamics(ema, tokenizer, val, n_windows, cfg.sampler, cfg.sampler_steps)
        log.info("step %d eval (EMA) %s", step, {k: round(v, 4) for k, v in scores.items()})
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
    card = _card(cfg, world, paths, train, step, wall, metrics)
    release_training_run(cfg, ema, tokenizer, paths, card, metrics, step, wall / 60, outcomes)
    log.info("released %s", out / "release")
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
