"""``python -m cosmos_env pretrain-base data=CORPUS tokenizer=NAME out=DIR``: pre-train a
world foundation model, as Cosmos does: video prediction from past frames across every
world of a corpus (``python -m cosmos_env corpus``), with no actions and no state, since
the worlds' action and state spaces differ. Post-training (``post-train``) adds them for
one world. The loop is train-dynamics' own (resumable, EMA, budget, board); the release
is a base (``dynamics/diffusion/base.py``), not an env-ready world model.
"""

from __future__ import annotations

import json
from pathlib import Path

from cosmos_env.data.store import EpisodeStore
from cosmos_env.distributed import batch_text, helper_result, ranks
from cosmos_env.dynamics.data import WindowBatcher
from cosmos_env.dynamics.diffusion.base import BASE_KIND, save_base
from cosmos_env.dynamics.diffusion.train import latent_data, normalised_model, run_training
from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig
from cosmos_env.precision import amp_text
from cosmos_env.tokenizer.release import load_tokenizer
from cosmos_env.training import file_logger, fit_machine


def _action_free(cfg: TrainDynamicsConfig) -> None:
    """The base's conditioning: none (the worlds' actions and states differ)."""
    if cfg.post_train is not None:
        raise ValueError("pretrain-base trains a base from scratch; drop post_train")
    d = cfg.dynamics
    d.action_dim = d.state_dim = 0
    d.action_low, d.action_high = [], []
    d.state_track = d.outcome_heads = d.state_spec = None
    cfg.state_features, cfg.state_batch = [], 0


def _corpus(paths: list[Path]) -> dict:
    """What the base saw: per world, stores, episodes and frames."""
    worlds: dict[str, dict[str, int]] = {}
    for path in paths:
        store = EpisodeStore.open(path)
        entry = worlds.setdefault(store.world, {"stores": 0, "episodes": 0, "frames": 0})
        entry["stores"] += 1
        entry["episodes"] += store.n_episodes
        entry["frames"] += store.n_frames
    return worlds


def _card(cfg: TrainDynamicsConfig, corpus: dict, steps: int, wall: float, metrics: dict) -> str:
    d = cfg.dynamics
    rows = "\n".join(
        f"| {world} | {c['stores']} | {c['episodes']} | {c['frames']} |"
        for world, c in sorted(corpus.items())
    )
    scores = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if "psnr" in k or "copy" in k)
    return f"""# World foundation model (diffusion base)

Pre-trained by `python -m cosmos_env pretrain-base` on the latents of tokenizer
`{cfg.tokenizer}`: next-frame prediction from {d.context} past frames, with no actions and
no state, across every world below. It is not an env by itself: post-train it for one
world (`python -m cosmos_env post-train base=... data=STORE out=DIR`).

- Network: DiT width {d.net.width}, depth {d.net.depth}, {d.net.heads} heads, on
  {d.latent_size}x{d.latent_size} latents of {d.latent_channels} channels.
- Training: {steps} steps of batch {batch_text(cfg.batch_size)} in {wall / 60:.1f} min
  ({amp_text(cfg.amp)}), lr {cfg.lr}, EMA {cfg.ema_decay}.
- Held-out windows of the same worlds (EMA weights): {scores}.

| world | stores | episodes | frames |
|---|---|---|---|
{rows}
"""


def pretrain_base(cfg: TrainDynamicsConfig) -> dict:
    """Pre-train on every store ``cfg.stores`` selects under ``cfg.data`` (latents cached);
    release the base to ``cfg.out/release`` and return the held-out metrics."""
    _action_free(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = file_logger("pretrain_base", out)
    amp = fit_machine(cfg.threads, cfg.amp, log)
    tokenizer = load_tokenizer(cfg.tokenizer)
    paths, train, val = latent_data(cfg, tokenizer, action_free=True)
    corpus = _corpus(paths)
    log.info("corpus: %s", json.dumps(corpus))
    batcher = WindowBatcher(train, cfg.dynamics.context)
    model = normalised_model(cfg, batcher, train)
    ema, step, wall, metrics = run_training(cfg, model, tokenizer, batcher, val, log, amp)
    if not ranks().main:  # a data-parallel helper: rank 0 releases
        return helper_result(step, wall)
    card = _card(cfg, corpus, step, wall, metrics)
    save_base(
        out / "release",
        ema,
        tokenizer,
        card,
        corpus=corpus,
        metrics=metrics,
        steps=step,
        wall_minutes=wall / 60,
    )
    log.info("released the base (%s) to %s", BASE_KIND, out / "release")
    return {"steps": step, "wall_minutes": wall / 60, **metrics}
