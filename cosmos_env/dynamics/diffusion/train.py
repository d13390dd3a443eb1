"""``python -m cosmos_env train-dynamics dynamics=diffusion tokenizer=CI8x8 data=PATH``:
train the diffusion world model and its state probe on cached latents, with EMA weights,
resume, a progress bar and a log file; release the EMA weights with their tokenizer's name
and checksum and held-out reset frames."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cosmos_env.data.world import store_world
from cosmos_env.distributed import helper_result, ranks
from cosmos_env.dynamics.data import (
    LatentEpisodes,
    WindowBatcher,
    load_latent_episodes,
    outcome_columns,
    select_stores,
)
from cosmos_env.dynamics.diffusion.base import (
    freeze_with_adapters,
    inherit_config,
    init_from_base,
    load_base,
    release_keys,
)
from cosmos_env.dynamics.diffusion.card import diffusion_card
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig
from cosmos_env.dynamics.evaluate import evaluate_dynamics
from cosmos_env.dynamics.release import release_training_run
from cosmos_env.dynamics.state_features import resolve_state_features
from cosmos_env.dynamics.state_track import extra_track_loss
from cosmos_env.dynamics.text_conditioning import attach_instructions, fill_vocabulary
from cosmos_env.precision import autocast
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.training import Board, file_logger, fit, fit_machine, reseeder


def _unrolled_batch(
    model, batcher: WindowBatcher, cfg: TrainDynamicsConfig, rng, gen, amp: bool
) -> dict:
    """A batch whose last context latent is the model's own one-step prediction (no
    gradient through it), so training sees the errors an open-loop rollout feeds back."""
    b = batcher.sample_unrolled(cfg.batch_size, rng)
    states = torch.cat([b["context_states"], b["next_state"][:, None]], dim=1)  # (B, K+1, S)
    text = {"text": b["text"]} if "text" in b else {}
    with autocast(amp):
        first = model.predict_next(
            b["context"], b["actions"], gen, 1, "euler", states=states, **text
        )
    return {
        "context": torch.cat([b["context"][:, 1:], first.float()[:, None]], dim=1),
        "actions": torch.cat([b["actions"][:, 1:], b["next_action"][:, None]], dim=1),
        "target": b["target"],
        "target_state": b["target_state"],
        "context_states": states[:, 1:],
        **text,
    }


def _step(model, batcher: WindowBatcher, cfg: TrainDynamicsConfig, rng, gen, amp: bool):
    """One training step's objective and its logged terms (diffusion, probe, state)."""
    if rng.random() < cfg.unroll_fraction:
        batch = _unrolled_batch(model, batcher, cfg, rng, gen, amp)
    else:
        batch = batcher.sample(cfg.batch_size, rng, cfg.early_fraction, cfg.early_steps)
    with autocast(amp):
        losses = model.losses(**batch, generator=gen)
    total = losses["diffusion"] + cfg.probe_weight * losses["probe"]
    total = total + losses.get("state", 0.0)
    total = total + extra_track_loss(model, batcher, cfg.state_batch, cfg.outcome_weight, rng)
    return total, {k: v.detach() for k, v in losses.items()}


def normalised_model(
    cfg: TrainDynamicsConfig, batcher: WindowBatcher, train: LatentEpisodes, base=None
) -> LatentDynamics:
    """A fresh model with the training data's standardisation stats set; with a ``base``
    (`BaseModel`), its network and weights (``dynamics/diffusion/base.py``)."""
    torch.manual_seed(cfg.seed)
    if base is not None:
        inherit_config(cfg.dynamics, base.cfg)
    fill_vocabulary(cfg.dynamics, train.instructions)
    model = LatentDynamics(cfg.dynamics)
    attach_instructions(model, batcher, train.instructions)
    sample = batcher.sample(min(16384, len(batcher)), np.random.default_rng(cfg.seed))
    last = sample["context"][:, -1]
    changes = sample["target_state"] - sample["context_states"][:, -1]  # (N, S), one step
    model.set_normalisation(last, sample["target"], torch.from_numpy(train.states), 1e-3, changes)
    if model.outcome is not None:
        model.outcome.set_normalisation(torch.from_numpy(train.outcomes[:, 0]))
    if base is not None:
        copied = init_from_base(model, base)
        if cfg.post_train.adapter_rank:
            freeze_with_adapters(model, copied, cfg.post_train.adapter_rank)
    return model


def latent_data(
    cfg: TrainDynamicsConfig, tokenizer, action_free: bool = False
) -> tuple[list, LatentEpisodes, LatentEpisodes]:
    """The stores and their cached latents' train and held-out episodes (``action_free``:
    latents alone, `load_latent_episodes`); the latent shape is written into
    ``cfg.dynamics`` (shapes come from the data)."""
    cfg.dynamics.latent_channels = tokenizer.cfg.code_channels
    paths = select_stores(cfg.data, cfg.stores)
    split = {"val_fraction": cfg.val_fraction, "seed": cfg.seed, "action_free": action_free}
    train = load_latent_episodes(paths, tokenizer, "train", **split)
    val = load_latent_episodes(paths, tokenizer, "val", **split)
    h, w = train.latents.shape[-2:]
    if h != w:
        raise ValueError(f"the cached latents are {h}x{w}; the world model needs square frames")
    cfg.dynamics.latent_size = int(h)
    return paths, train, val


def run_training(
    cfg: TrainDynamicsConfig,
    model: LatentDynamics,
    tokenizer,
    batcher: WindowBatcher,
    val: LatentEpisodes,
    log,
    amp: bool,
) -> tuple[LatentDynamics, int, float, dict[str, float]]:
    """The diffusion objective in the one training loop (``training.fit``), resumable;
    only parameters that require grad are optimised (adapters over a frozen base). Returns
    (the EMA model, steps, wall seconds, final held-out scores)."""
    out = Path(cfg.out)
    ema = copy.deepcopy(model).requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    log.info("config %s", asdict(cfg))
    log.info(
        "data: %d train windows, %d val frames; model %.2fM parameters (%.2fM trained)",
        len(batcher),
        val.n_frames,
        sum(p.numel() for p in model.parameters()) / 1e6,
        sum(p.numel() for p in trainable) / 1e6,
    )
    board = Board(out)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)

    def train_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return _step(model, batcher, cfg, rng, gen, amp)

    def evaluate(step: int, final: bool) -> dict[str, float]:
        samples: dict[str, torch.Tensor] = {}
        windows = cfg.eval_windows if final else cfg.eval_windows // 4
        scores = evaluate_dynamics(
            ema, tokenizer, val, windows, cfg.sampler, cfg.sampler_steps, samples=samples
        )
        if "rollout" in samples:  # the truth's 16 frames, then the model's open loop
            board.frames(step, "eval/rollout", samples["rollout"])
        return scores

    step, wall, metrics = fit(
        cfg,
        model,
        ema,
        opt,
        out,
        log,
        board,
        train_step,
        evaluate,
        reseeder(cfg.seed, rng, gen),
        "train dynamics",
    )
    board.close()
    return ema, step, wall, metrics


def _post_train_base(cfg: TrainDynamicsConfig, log):
    """The base of a post-training run, and its tokenizer (the one it was pre-trained
    with; a different ``cfg.tokenizer`` is refused)."""
    if cfg.post_train is None:
        return None, load_tokenizer(cfg.tokenizer)
    base = load_base(cfg.post_train.base)
    tokenizer = load_tokenizer(base.tokenizer["source"])
    if tokenizer.checksum != base.tokenizer["checksum"]:
        raise ValueError(
            f"base {cfg.post_train.base} was pre-trained on tokenizer weights "
            f"{base.tokenizer['checksum']}, but {base.tokenizer['source']} has "
            f"{tokenizer.checksum}: install the base's tokenizer"
        )
    cfg.tokenizer = base.tokenizer["source"]
    log.info("post-training base %s (weights %s)", base.directory, base.checksum)
    return base, tokenizer


def train_dynamics(cfg: TrainDynamicsConfig) -> dict:
    """Train (or post-train a base, ``cfg.post_train``), release to ``cfg.out/release`` and
    return the held-out metrics."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = file_logger("train_dynamics", out)
    amp = fit_machine(cfg.threads, cfg.amp, log)
    base, tokenizer = _post_train_base(cfg, log)
    paths, train, val = latent_data(cfg, tokenizer)
    batcher = WindowBatcher(train, cfg.dynamics.context)
    world = store_world(paths)  # one world, action spec and state spec across the stores
    on = resolve_state_features(
        cfg.dynamics, world.state_spec, world.action_spec, train.states, cfg.state_features
    )
    outcomes = outcome_columns(paths) if cfg.dynamics.outcome_heads else ()
    log.info("world %s; state-track features %s; outcome heads on %s", world.name, on, outcomes)
    model = normalised_model(cfg, batcher, train, base)
    ema, step, wall, metrics = run_training(cfg, model, tokenizer, batcher, val, log, amp)
    if not ranks().main:  # a data-parallel helper: rank 0 releases
        return helper_result(step, wall)
    card = diffusion_card(cfg, world, paths, train, step, wall, metrics)
    extra = {}
    if base is not None:
        record = {**base.reference(), "adapter_rank": cfg.post_train.adapter_rank}
        extra = {"base": record, "keys": release_keys(model)}  # the EMA has no grads
    release_training_run(
        cfg, ema, tokenizer, paths, card, metrics, step, wall / 60, outcomes, **extra
    )
    log.info("released %s", out / "release")
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
