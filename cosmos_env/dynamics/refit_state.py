"""``python -m cosmos_env refit-state-track world_model=diffusion-push data=PATH``: train a
released world model's state track anew (either backend: the track is shared,
``dynamics/state_track.py``), keeping everything else.

The state track (the state MLP and, with a ``frame_head``, the gripper-frame head) is a
small network beside the frame generator (the denoiser or the AR transformer): it trains on
states and actions alone in minutes, while the generator takes half an hour or more. The
generator is conditioned on states, not on the track's weights, so a new track (a new
architecture, more data) needs no new generator. The release keeps the generator, the
probe, the normalisation and the reset frames of ``world_model``, and its card gains a
section with both tracks' held-out scores.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from cosmos_env import checkpoint
from cosmos_env.dynamics.autoregressive.evaluate import evaluate_ar
from cosmos_env.dynamics.data import WindowBatcher, load_latent_episodes, select_stores
from cosmos_env.dynamics.diffusion.train_config import RefitStateConfig
from cosmos_env.dynamics.evaluate import evaluate_dynamics
from cosmos_env.dynamics.release import load_world_model, save_world_model
from cosmos_env.dynamics.state_track import StateTrackModel
from cosmos_env.machine import set_torch_threads
from cosmos_env.tokenizer.data import store_paths
from cosmos_env.training import Board, file_logger, fit, reseeder

TRACK_PREFIXES = ("state_dynamics.", "frame_head.")


def _new_track_model(old: StateTrackModel, cfg: RefitStateConfig) -> StateTrackModel:
    """A copy of ``old`` with the state-track architecture of ``cfg``: every weight and
    buffer outside the track is copied, the track starts fresh."""
    if old.cfg.state_track is None:
        raise ValueError(
            f"{cfg.world_model} has no state track to refit (dynamics.state_track=null)"
        )
    head = replace(cfg.frame_head, objects=list(cfg.frame_head.objects)) if cfg.frame_head else None
    dynamics_cfg = replace(old.cfg, state_track=replace(old.cfg.state_track, frame_head=head))
    torch.manual_seed(cfg.seed)
    model = type(old)(dynamics_cfg)  # the same backend
    kept = {k: v for k, v in old.state_dict().items() if not k.startswith(TRACK_PREFIXES)}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    stray = [k for k in missing if not k.startswith(TRACK_PREFIXES)] + list(unexpected)
    if stray:
        raise ValueError(f"{cfg.world_model} does not match its own architecture: {stray}")
    return model


def _track_parameters(model: StateTrackModel) -> list[torch.nn.Parameter]:
    modules = [model.state_dynamics, model.frame_head]
    return [p for m in modules if m is not None for p in m.parameters()]


def _train_track(
    model: StateTrackModel, batcher: WindowBatcher, cfg: RefitStateConfig, out: Path, log, score
) -> tuple[dict[str, float], float, int]:
    """Train only ``model``'s state track on state windows in the one training loop;
    return the held-out scores after, the wall seconds and the steps."""
    model.requires_grad_(False)
    params = _track_parameters(model)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = copy.deepcopy(model).requires_grad_(False)  # ema_decay 0: a copy of the model
    rng = np.random.default_rng(cfg.seed)

    def train_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = batcher.sample_states(cfg.batch_size, rng)
        batch.pop("outcomes")  # the outcome heads are not part of the track
        loss = model.state_loss(**batch)
        return loss, {"state": loss.detach()}

    board = Board(out)
    steps, wall, after = fit(
        cfg,
        model,
        ema,
        opt,
        out,
        log,
        board,
        train_step,
        lambda step, final: score(ema),
        reseeder(cfg.seed, rng),
        "refit state track",
    )
    board.close()
    model.load_state_dict(ema.state_dict())
    model.eval().requires_grad_(False)
    return after, wall, steps


def _card(old_card: str, cfg: RefitStateConfig, model, before, after, wall) -> str:
    track, frame = model.cfg.state_track, model.cfg.state_track.frame_head
    head = (
        f"a gripper-frame head (width {frame.width}) predicts the planar motion of "
        f"{', '.join(frame.objects)} in the frame of {frame.quat}'s yaw "
        "(`dynamics/gripper_frame.py`), beside the state MLP (width "
        f"{track.width}) for every other dimension"
        if frame
        else f"the state MLP (width {track.width})"
    )
    extra = f" extra_data={cfg.extra_data}" if cfg.extra_data else ""
    also = f" and {cfg.extra_data}" if cfg.extra_data else ""
    keys = [k for k in after if k in before]
    rows = "\n".join(f"| {k} | {before[k]:.3f} | {after[k]:.3f} |" for k in keys)
    return (
        old_card.rstrip()
        + "\n\n## State track refit\n\n"
        + f"The state track was trained anew with `python -m cosmos_env refit-state-track "
        f"world_model={cfg.world_model} data={cfg.data}{extra}`: {head}. {cfg.steps} steps at "
        f"batch {cfg.batch_size} of state windows from the stores above{also} (same held-out "
        "split), "
        f"AdamW lr {cfg.lr} cosine; {wall / 60:.1f} min on {torch.get_num_threads()} CPU "
        "threads. The frame generator, the probe and the normalisation are unchanged.\n\n"
        "Held-out windows, before and after (`<object>_cm_h16`: the error of the model's own "
        "object position after 16 open-loop steps):\n\n| metric | before | after |\n"
        "|---|---|---|\n" + rows + "\n"
    )


def refit_state_track(cfg: RefitStateConfig) -> dict:
    """Train the state track of ``cfg.world_model`` anew; release to ``cfg.out/release``
    and return the held-out scores before and after."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = file_logger("refit_state", out)
    set_torch_threads(cfg.threads)
    log.info("config %s", asdict(cfg))
    world = load_world_model(cfg.world_model)
    paths = select_stores(cfg.data, cfg.stores)
    paths += store_paths(cfg.extra_data) if cfg.extra_data else []
    train = load_latent_episodes(paths, world.tokenizer, "train", cfg.val_fraction, cfg.seed)
    val = load_latent_episodes(paths, world.tokenizer, "val", cfg.val_fraction, cfg.seed)

    def score(model: StateTrackModel) -> dict[str, float]:
        steps, sampler = world.sampler_steps, world.sampler
        if world.discrete:
            return evaluate_ar(model, val, cfg.eval_windows, sampler, steps)
        return evaluate_dynamics(model, world.tokenizer, val, cfg.eval_windows, sampler, steps)

    before = score(world.dynamics)
    log.info("before %s", {k: round(v, 4) for k, v in before.items()})
    model = _new_track_model(world.dynamics, cfg)
    batcher = WindowBatcher(train, model.cfg.context)
    after, wall, steps = _train_track(model, batcher, cfg, out, log, score)
    log.info("after %s (%.1f min)", {k: round(v, 4) for k, v in after.items()}, wall / 60)
    card_path = world.source / "card.md"
    old_card = card_path.read_text() if card_path.exists() else ""
    # What the release recorded of its own training (steps, wall time) stays on record.
    record = checkpoint.read_config(world.source)
    for key in ("dynamics", "tokenizer", "world", "sampler"):  # save_world_model writes these
        record.pop(key, None)
    # A post-trained input was loaded with its adapters merged into the base's weights: the
    # refit stores every weight and no longer needs (or names) the base.
    post_trained_from = record.pop("base", None)
    weights = record.pop(checkpoint.WEIGHTS, "float16")  # the refit ships as the input did
    record |= {"metrics": after, "metrics_before_refit": before, "refit_steps": steps}
    if post_trained_from:
        record["post_trained_from"] = post_trained_from
    save_world_model(
        out / "release",
        model,
        world.tokenizer,
        world.world,
        world.sampler,
        world.sampler_steps,
        world.reset_frames,
        world.reset_states,
        _card(old_card, cfg, model, before, after, wall),
        weights=weights,
        **record,
    )
    log.info("released %s", out / "release")
    return {"before": before, "after": after, "wall_minutes": wall / 60}
