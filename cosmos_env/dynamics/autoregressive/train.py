"""``python -m cosmos_env train-dynamics dynamics=ar tokenizer=DI8x8 data=PATH``: train the
autoregressive world model (teacher-forced and MaskGIT objectives on the same batches) and
its state probe on cached tokens, with EMA weights, resume, a progress bar and a log file;
release the EMA weights with their tokenizer's name and checksum and held-out reset
frames, in the layout of the diffusion world model's release."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from cosmos_env.data.world import store_world
from cosmos_env.distributed import batch_text, helper_result, ranks
from cosmos_env.dynamics.autoregressive.data import TokenWindowBatcher
from cosmos_env.dynamics.autoregressive.evaluate import evaluate_ar
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.autoregressive.train_config import TrainARConfig
from cosmos_env.dynamics.data import (
    LatentEpisodes,
    load_latent_episodes,
    outcome_columns,
    select_stores,
)
from cosmos_env.dynamics.release import release_training_run
from cosmos_env.dynamics.state_features import resolve_state_features
from cosmos_env.dynamics.state_track import extra_track_loss
from cosmos_env.dynamics.text_conditioning import attach_instructions, fill_vocabulary
from cosmos_env.precision import amp_text, autocast
from cosmos_env.tokenizer.model import Tokenizer
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.training import Board, file_logger, fit, fit_machine, reseeder

SAMPLERS = TokenDynamics.samplers


def _check_pair(cfg: TrainARConfig, tokenizer: Tokenizer, train: LatentEpisodes) -> None:
    """The model's token grid and its action and state dims come from the data (whatever
    the config says, as for diffusion); its FSQ levels must be the tokenizer's."""
    d, name = cfg.dynamics, tokenizer.cfg.name
    d.latent_size = int(train.latents.shape[-1])
    d.action_dim, d.state_dim = int(train.actions.shape[1]), int(train.states.shape[1])
    if list(tokenizer.cfg.fsq_levels) != d.levels:
        raise ValueError(
            f"dynamics.levels={d.levels} but {name} has fsq_levels {tokenizer.cfg.fsq_levels}; "
            "set dynamics.levels to match"
        )


def _load_data(cfg: TrainARConfig) -> tuple[Tokenizer, list[Path], LatentEpisodes, LatentEpisodes]:
    """The tokenizer (must be discrete), the stores, and their train and val tokens."""
    tokenizer = load_tokenizer(cfg.tokenizer)
    if tokenizer.cfg.kind != "discrete":
        raise ValueError(
            f"{tokenizer.cfg.name} is a continuous tokenizer; the autoregressive world model "
            "reads discrete tokens: pass tokenizer=DI8x8 (or another discrete tokenizer)"
        )
    paths = select_stores(cfg.data, cfg.stores)
    train = load_latent_episodes(paths, tokenizer, "train", cfg.val_fraction, cfg.seed)
    val = load_latent_episodes(paths, tokenizer, "val", cfg.val_fraction, cfg.seed)
    _check_pair(cfg, tokenizer, train)
    return tokenizer, paths, train, val


def _optimizer(model: TokenDynamics, cfg: TrainARConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices, embeddings and convs, none on gains and biases."""
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _total(losses: dict[str, torch.Tensor], cfg: TrainARConfig) -> torch.Tensor:
    """The training objective: teacher-forced + weighted MaskGIT + weighted probe losses
    (+ the state track's, for a state-track model)."""
    parallel = losses["parallel_ce"] + losses["parallel_z_loss"]
    total = losses["ce"] + losses["z_loss"] + cfg.parallel_weight * parallel
    return total + cfg.probe_weight * losses["probe"] + losses.get("state", 0.0)


def _track_text(cfg: TrainARConfig) -> str:
    """The card's sentence on the state track, or on the probe where there is none."""
    d = cfg.dynamics
    if d.state_track is None:
        return (
            "A convolutional state probe reads the task state from a frame's FSQ codes; reward "
            "and success are the world's functions of it."
        )
    track = d.state_track
    named = (
        ("an end-effector integrator", track.integrator),
        ("contact features", track.contact),
        ("a gripper-frame head", track.frame_head),
    )
    parts = [name for name, on in named if on]
    keypoints = (
        f" and keypoint maps of {', '.join(track.keypoints.slots)}" if track.keypoints else ""
    )
    return (
        f"A state track (an MLP of width {track.width}"
        + (f" with {', '.join(parts)}" if parts else "")
        + ", shared with the diffusion backend) carries the task state; every frame's state "
        f"conditions the transformer (an MLP added to the frame's inputs{keypoints}), and "
        "reward and success are scored on the track's state. A convolutional probe reads the "
        "state from tokens where a reset gives frames only."
    )


def _card(cfg: TrainARConfig, paths, train: LatentEpisodes, n_params, steps, wall, metrics) -> str:
    d = cfg.dynamics
    tok = Path(cfg.tokenizer).name if "/" in cfg.tokenizer else cfg.tokenizer
    lines = [
        f"# Autoregressive world model: {store_world(paths).name}",
        "",
        f"A Llama-style causal transformer ({n_params / 1e6:.2f}M parameters with the probe; width "
        f"{d.width}, depth {d.depth}, {d.heads} heads, SwiGLU, RMS-normalised Q/K, RoPE over "
        f"time, row and column) over the {d.latent_size}x{d.latent_size} FSQ tokens of the "
        f"tokenizer `{tok}` (levels {d.levels}; its weights checksum is in config.json; "
        f"another tokenizer is refused). The sequence is {d.context} context frames of "
        f"{d.tokens_per_frame} tokens with one action token after each, then the next frame. "
        "Tokens are embedded and predicted as their FSQ digits (one table and one softmax "
        f"head per digit), so the {d.vocab_size}-token vocabulary costs no parameters. One network "
        "decodes token by token (KV cache) or in MaskGIT passes: it is trained on both "
        "objectives on the same batches. " + _track_text(cfg),
        "",
        f"- Data: {', '.join(p.name for p in paths)} (world {store_world(paths).name}); "
        f"{train.n_frames} training frames in {len(train.starts)} "
        f"episodes, held-out split val_fraction {cfg.val_fraction}",
        f"- Training: {steps} steps at batch {batch_text(cfg.batch_size)} "
        f"({cfg.early_fraction:.0%} of each batch from the first {cfg.early_steps} steps of "
        f"episodes), AdamW lr {cfg.lr} cosine, "
        f"weight decay {cfg.weight_decay}, EMA {cfg.ema_decay}, z-loss {d.z_loss}, MaskGIT "
        f"weight {cfg.parallel_weight} (masked fraction cosine in [{d.mask_prob_min}, "
        f"{d.mask_prob_max}])"
        + (f", {cfg.state_batch} extra state-track windows per step" if d.state_track else "")
        + f", {amp_text(cfg.amp)}; wall time {wall / 60:.1f} min on "
        f"{torch.get_num_threads()} CPU threads",
        f"- Default decoder: {cfg.sampler}"
        + (f", {cfg.sampler_steps} MaskGIT passes per frame" if cfg.sampler == "parallel" else ""),
        "- Held-out windows at the end of training (EMA weights; ce/accuracy teacher-forced, "
        "parallel_* MaskGIT on the last frame, sampled_* / cube_cm_next on a frame sampled "
        "with the default decoder): " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
        f"- Reproduce: `python -m cosmos_env train-dynamics dynamics=ar "
        f"tokenizer={cfg.tokenizer} data={cfg.data}`",
    ]
    return "\n".join(lines) + "\n"


def normalised_model(
    cfg: TrainARConfig, batcher: TokenWindowBatcher, train: LatentEpisodes
) -> TokenDynamics:
    """A fresh model with the training data's state stats (and, for the state track, the
    stats of its one-step changes; for the outcome heads, of the rewards) set; an
    instruction model's vocabulary comes from the episodes' instructions."""
    torch.manual_seed(cfg.seed)
    fill_vocabulary(cfg.dynamics, train.instructions)
    model = TokenDynamics(cfg.dynamics)
    attach_instructions(model, batcher, train.instructions)
    sample = batcher.sample_states(min(16384, len(batcher)), np.random.default_rng(cfg.seed))
    changes = sample["target_state"] - sample["context_states"][:, -1]  # (N, S), one step
    model.set_normalisation(torch.from_numpy(train.states), 1e-3, changes)
    if model.outcome is not None:
        model.outcome.set_normalisation(torch.from_numpy(train.outcomes[:, 0]))
    return model


def train_ar(cfg: TrainARConfig) -> dict:
    """Train, release to ``cfg.out/release`` and return the held-out metrics."""
    if cfg.sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {cfg.sampler!r}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log, board = file_logger("train_ar", out), Board(out)
    amp = fit_machine(cfg.threads, cfg.amp, log)
    tokenizer, paths, train, val = _load_data(cfg)
    world = store_world(paths)  # shapes and meanings come from the data
    on = resolve_state_features(
        cfg.dynamics, world.state_spec, world.action_spec, train.states, cfg.state_features
    )
    outcomes = outcome_columns(paths) if cfg.dynamics.outcome_heads else ()
    log.info("world %s; state-track features %s; outcome heads on %s", world.name, on, outcomes)
    batcher = TokenWindowBatcher(train, cfg.dynamics.context)
    model = normalised_model(cfg, batcher, train)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = _optimizer(model, cfg)
    log.info("config %s", asdict(cfg))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("data: %d train windows, %d val frames", len(batcher), val.n_frames)
    log.info("model %.2fM parameters", n_params / 1e6)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)

    def train_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = batcher.sample(cfg.batch_size, rng, cfg.early_fraction, cfg.early_steps)
        with autocast(amp):
            losses = model.losses(**batch, generator=gen)
        total = _total(losses, cfg)
        total = total + extra_track_loss(model, batcher, cfg.state_batch, cfg.outcome_weight, rng)
        return total, {k: v.detach() for k, v in losses.items()}

    def scores(step: int, final: bool) -> dict[str, float]:
        windows = cfg.eval_windows if final else cfg.eval_windows // 4
        return evaluate_ar(ema, val, windows, cfg.sampler, cfg.sampler_steps)

    step, wall, metrics = fit(
        cfg,
        model,
        ema,
        opt,
        out,
        log,
        board,
        train_step,
        scores,
        reseeder(cfg.seed, rng, gen),
        "train AR dynamics",
    )
    if not ranks().main:  # a data-parallel helper: rank 0 releases
        board.close()
        return helper_result(step, wall)
    card = _card(cfg, paths, train, n_params, step, wall, metrics)
    release_training_run(cfg, ema, tokenizer, paths, card, metrics, step, wall / 60, outcomes)
    log.info("released %s", out / "release")
    board.close()
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
