"""World model vs its world's simulator: the same initial frame and state and the same
actions in both, open loop, for any world with a simulator.

Each episode resets the simulator with its own seed and rolls a policy out for ``horizon``
steps; the world model starts from the encoded first frame (and the simulator's state) and
applies the same actions, batched over episodes. Per horizon step h = 1..H the scores are
PSNR and SSIM of the predicted frame against the simulator's, the copy-last-frame baseline
(the first frame held), the tokenizer's reconstruction of the true frame (the ceiling), and
the state errors: in units of each dim's std, and in cm for the positions the StateSpec
names (end effector, objects). Rewards are compared per step and per episode (Pearson), and
success per episode where the world has it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cosmos_env.config import CompareConfig
from cosmos_env.data.world import World, load_world
from cosmos_env.dynamics.release import WorldModel, load_world_model
from cosmos_env.dynamics.rollout import rollout
from cosmos_env.envs.scoring import Scorer
from cosmos_env.eval import report
from cosmos_env.eval.metrics import position_errors_cm, psnr, ssim, to_unit
from cosmos_env.eval.policy_ranking import episode_bootstrap_pearson, pearson
from cosmos_env.eval.simulate import POLICIES, Rollouts, simulate
from cosmos_env.guardrails.text import guard_text
from cosmos_env.precision import AmpSetting, autocast, describe_amp, resolve_amp

__all__ = ["Rollouts", "simulate", "compare", "run_compare", "world_of"]
HELD_OUT_SEED = 9_999  # training stores (prepare.py, retrain) use small seeds (0-6)
SUMMARY_HORIZON = 16


@dataclass
class Predictions:
    """World model output for frames 1..T: ``frames`` uint8 (N, T, H, W, 3) and its
    ``states`` (N, T, S) (the state track's, or the probe's reading of each frame);
    ``recon`` uint8 (N, T+1, H, W, 3) and ``recon_states`` are the tokenizer's
    reconstruction of the true frames and the probe on their latents; ``rewards`` (N, T)
    and ``success`` bool (N, T) score the predicted steps as the env does."""

    frames: np.ndarray
    states: np.ndarray
    recon: np.ndarray
    recon_states: np.ndarray
    seconds: float
    rewards: np.ndarray | None = None
    success: np.ndarray | None = None


@dataclass
class History:
    """Frames before a rollout's first frame, uint8 (N, k-1, H, W, 3), oldest first, their
    states (N, k-1, S), and the actions between them and up to the first frame, float32
    (N, k-1, A)."""

    frames: np.ndarray
    actions: np.ndarray
    states: np.ndarray


def world_of(wm: WorldModel) -> World:
    """The simulator world a release was trained on; a store-only world cannot be compared."""
    world = load_world(wm.world.description, f"{wm.source}'s world")
    if world is None:
        raise ValueError(
            f"{wm.source} is a world model of the store-only world {wm.world.name!r}: there is "
            "no simulator to compare it with (score it on held-out store episodes instead)"
        )
    return world


def window(truth: Rollouts, start: int, horizon: int, context: int) -> tuple[Rollouts, History]:
    """The ``horizon`` steps of ``truth`` from frame ``start``, and what came before: up to
    ``context`` - 1 earlier frames with the actions between them (empty at ``start`` 0)."""
    if start < 0 or start + horizon > truth.actions.shape[1]:
        raise ValueError(
            f"start {start} + horizon {horizon} > {truth.actions.shape[1]} simulated steps"
        )
    lo = max(0, start - context + 1)
    steps = slice(start, start + horizon)
    part = Rollouts(
        truth.frames[:, start : start + horizon + 1],
        truth.states[:, start : start + horizon + 1],
        truth.actions[:, steps],
        truth.seconds,
        None if truth.rewards is None else truth.rewards[:, steps],
        None if truth.success is None else truth.success[:, steps],
    )
    before = History(
        truth.frames[:, lo:start], truth.actions[:, lo:start], truth.states[:, lo:start]
    )
    return part, before


def _chunked(fn: Callable[..., torch.Tensor], *arrays, batch: int = 256) -> torch.Tensor:
    """``fn`` over the first axis of ``arrays`` in chunks of ``batch`` (bounded memory)."""
    n = len(arrays[0])
    return torch.cat([fn(*(x[i : i + batch] for x in arrays)) for i in range(0, n, batch)])


def _decode(wm: WorldModel, latents: torch.Tensor) -> np.ndarray:
    """Latents (M, C, h, w) or tokens (M, h, w) -> uint8 frames (M, H, W, 3)."""
    return _chunked(wm.decode, latents).numpy()


def _encode(wm: WorldModel, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (M, H, W, 3) -> latents (M, C, h, w) or tokens (M, h, w)."""
    return _chunked(wm.encode, torch.from_numpy(frames))


@torch.inference_mode()
def predict(
    wm: WorldModel,
    truth: Rollouts,
    seed: int,
    sampler: str,
    steps: int,
    amp: AmpSetting = "auto",
    history: History | None = None,
    true_initial_states: bool = True,
    world: World | None = None,
    guidance: float = 1.0,
) -> Predictions:
    """Open-loop world-model rollout of ``truth.actions`` from ``truth``'s first frames
    (with ``history`` as extra context), batched over episodes; randomness from a
    generator seeded with ``seed``. A state-track model starts from the simulator's
    states of those frames (both worlds start identical), or with
    ``true_initial_states=False`` from the probe's reading of the frames alone. An
    instruction model follows each episode's instruction (the one its first state
    carries), with classifier-free ``guidance``."""
    n, t1 = truth.frames.shape[:2]
    true_latents = _encode(wm, truth.frames.reshape(n * t1, *truth.frames.shape[2:]))
    recon = _decode(wm, true_latents).reshape(truth.frames.shape)
    recon_states = wm.dynamics.predict_state(true_latents).double().numpy().reshape(n, t1, -1)
    initial = true_latents.view(n, t1, *true_latents.shape[1:])[:, :1]  # (N, 1, C, h, w)
    initial_states = truth.states[:, :1]
    past = None
    if history is not None and history.frames.shape[1]:
        k = history.frames.shape[1]
        before = _encode(wm, history.frames.reshape(n * k, *history.frames.shape[2:]))
        initial = torch.cat([before.view(n, k, *before.shape[1:]), initial], dim=1)
        past = torch.from_numpy(history.actions)
        initial_states = np.concatenate([history.states, initial_states], axis=1)
    start_states = torch.from_numpy(initial_states).float() if true_initial_states else None
    actions = torch.from_numpy(truth.actions)
    told = (_instructions(wm, world, truth), guidance)
    with autocast(resolve_amp(amp)):
        warm = (wm.dynamics, initial, actions[:, :1], torch.Generator(), steps, sampler, past)
        rollout(*warm, start_states, *told)
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        run = (wm.dynamics, initial, actions, generator, steps, sampler, past, start_states)
        latents, states = rollout(*run, *told)
    flat = latents.flatten(0, 1)  # (N * T, C, h, w) or (N * T, h, w) tokens
    flat = flat if wm.discrete else flat.float()
    frames = _decode(wm, flat).reshape(n, t1 - 1, *truth.frames.shape[2:])
    states = states.double().numpy()
    seconds = time.perf_counter() - start
    rewards, success = score_steps(wm, world, truth.states[:, 0], truth.actions, states)
    return Predictions(frames, states, recon, recon_states, seconds, rewards, success)


def score_steps(
    wm: WorldModel, world: World | None, first: np.ndarray, actions: np.ndarray, states
) -> tuple[np.ndarray, np.ndarray]:
    """Rewards (N, T) and success (N, T) of predicted ``states`` (N, T, S) reached by
    ``actions`` (N, T, A) from ``first`` (N, S), scored as the env scores them."""
    prev = np.concatenate([first[:, None], states[:, :-1]], axis=1)
    n, t = actions.shape[:2]
    flat = [x.reshape(n * t, -1) for x in (prev, actions, states)]
    out = Scorer(wm, world).score(*flat)
    return out["reward"].reshape(n, t), out["is_success"].reshape(n, t)


def frame_scores(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM (each (N, T)) of uint8 frames (N, T, H, W, 3) against ``true``."""
    n, t = pred.shape[:2]
    a, b = (torch.from_numpy(np.ascontiguousarray(x)).flatten(0, 1) for x in (pred, true))

    def scores(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([psnr(to_unit(x), to_unit(y)), ssim(to_unit(x), to_unit(y))], 1)

    both = _chunked(scores, a, b).view(n, t, 2).numpy()
    return both[..., 0], both[..., 1]


def score(truth: Rollouts, pred: Predictions, wm: WorldModel) -> dict[str, list[float]]:
    """Per-horizon means over episodes, h = 1..T (each list has T entries)."""
    future, held = truth.frames[:, 1:], np.repeat(truth.frames[:, :1], truth.actions.shape[1], 1)
    wm_psnr, wm_ssim = frame_scores(pred.frames, future)
    copy_psnr, copy_ssim = frame_scores(held, future)
    tok_psnr, tok_ssim = frame_scores(pred.recon[:, 1:], future)
    true_states = truth.states[:, 1:]
    std = wm.dynamics.state_std.double().numpy()
    curves = {
        "psnr": wm_psnr,
        "ssim": wm_ssim,
        "copy_last_psnr": copy_psnr,
        "copy_last_ssim": copy_ssim,
        "tokenizer_psnr": tok_psnr,
        "tokenizer_ssim": tok_ssim,
        "state_std_err": (np.abs(pred.states - true_states) / std).mean(-1),
        "probe_on_true_state_std_err": (np.abs(pred.recon_states[:, 1:] - true_states) / std).mean(
            -1
        ),
    }
    for name, index in wm.world.state_spec.named_positions().items():
        curves[f"{name}_err_cm"] = position_errors_cm(pred.states, true_states, index)
    per_horizon = {"h": list(range(1, truth.actions.shape[1] + 1))}
    per_horizon |= {k: [float(x) for x in v.mean(axis=0)] for k, v in curves.items()}
    return per_horizon


def outcome_agreement(truth: Rollouts, pred: Predictions, has_success: bool) -> dict:
    """Pearson r of per-step rewards (with its 95% episode-bootstrap interval: a rare
    reward term, such as a success bonus, makes it swing with the episodes drawn) and of
    episode returns (world model vs simulator, same initial states and actions) and, where
    the world has success, the share of episodes whose success (at any step) both agree on
    and each world's success rate. Across-episode figures need two episodes (NaN below)."""
    several = len(truth.rewards) > 1
    nan = float("nan")
    out = {
        "reward_pearson": pearson(pred.rewards.ravel(), truth.rewards.ravel()),
        "reward_pearson_ci95": episode_bootstrap_pearson(pred.rewards, truth.rewards)
        if several
        else [nan, nan],
        "return_pearson": pearson(pred.rewards.sum(1), truth.rewards.sum(1)) if several else nan,
    }
    if has_success:
        agree = pred.success.any(1) == truth.success.any(1)
        out["success_agreement"] = float(agree.mean())
        out["success_rate_simulator"] = float(truth.success.any(1).mean())
        out["success_rate_world_model"] = float(pred.success.any(1).mean())
    return out


def summarise(per_horizon: dict[str, list[float]]) -> dict[str, float]:
    """Headline numbers; ``*_h16`` are at h = min(16, H) (``h_ref``), ``*_mean_h1_16`` the
    mean over h = 1..min(16, H)."""
    ref = min(SUMMARY_HORIZON, len(per_horizon["h"]))
    summary: dict[str, float] = {"h_ref": ref}
    for metric in ("psnr", "ssim"):
        curve = per_horizon[metric]
        summary[f"{metric}_h1"] = curve[0]
        summary[f"{metric}_mean_h1_16"] = float(np.mean(curve[:ref]))
        summary[f"{metric}_h16"] = curve[ref - 1]
        summary[f"copy_last_{metric}_h16"] = per_horizon[f"copy_last_{metric}"][ref - 1]
        summary[f"tokenizer_{metric}_h16"] = per_horizon[f"tokenizer_{metric}"][ref - 1]
    for key, curve in per_horizon.items():  # state errors at h_ref: <name>_err_h16_cm, ...
        if key.endswith("_err_cm"):
            summary[f"{key.removesuffix('_cm')}_h16_cm"] = curve[ref - 1]
        elif key.endswith("state_std_err"):
            summary[f"{key}_h16"] = curve[ref - 1]
    return summary


def _instructions(wm: WorldModel, world: World | None, truth: Rollouts) -> list[str] | None:
    """Each episode's instruction, for a world model that follows instructions: the one
    its first state carries in the world's instruction slots."""
    if wm.dynamics.text is None:
        return None
    if world is None or not hasattr(world, "instructions"):
        raise ValueError(
            f"{wm.source} follows instructions, and its world's states name none to give it"
        )
    return world.instructions(truth.states[:, 0])


def compare(
    wm: WorldModel,
    truth: Rollouts,
    seed: int,
    sampler: str,
    steps: int,
    amp: AmpSetting = "auto",
    history: History | None = None,
    true_initial_states: bool = True,
    world: World | None = None,
    guidance: float = 1.0,
) -> tuple[dict, Predictions]:
    """Scores of one world-model setting on ``truth``: per-horizon curves, summary (with
    reward and success agreement where ``truth`` has rewards), timing."""
    world = world or world_of(wm)
    setting = (amp, history, true_initial_states, world, guidance)
    pred = predict(wm, truth, seed, sampler, steps, *setting)
    per_horizon = score(truth, pred, wm)
    n_frames = truth.actions.shape[0] * truth.actions.shape[1]
    timing = {
        "mujoco_s": truth.seconds,
        "world_model_s": pred.seconds,
        "mujoco_frames_per_s": n_frames / truth.seconds,
        "world_model_frames_per_s_batched": n_frames / pred.seconds,
    }
    result = {"sampler": sampler, "sampler_steps": steps, "amp": describe_amp(amp)}
    result["guidance"] = guidance
    result["summary"] = summarise(per_horizon)
    if truth.rewards is not None:
        result["summary"] |= outcome_agreement(truth, pred, world.has_success)
    return result | {"per_horizon": per_horizon, "timing": timing}, pred


# The instructed tabletop's env takes every instruction, the held-out ones included.
ANY_INSTRUCTION = {"instructions": "all"}


def run_compare(cfg: CompareConfig, world_model: WorldModel | None = None) -> dict:
    """The ``compare`` command: simulate, predict, score, write files to ``cfg.out`` and
    print the table; returns what ``compare.json`` holds."""
    if cfg.policy not in POLICIES:
        raise ValueError(f"unknown policy {cfg.policy!r}; choose one of {list(POLICIES)}")
    options = None
    if cfg.instruction is not None:  # guarded before any world or model reads it
        options = {"instruction": guard_text(cfg.instruction)}
    if world_model is None and not cfg.checkpoint:
        raise ValueError("checkpoint=DIR: which world model (a release directory or shipped name)")
    wm = world_model or load_world_model(cfg.checkpoint)
    world = world_of(wm)
    if options and wm.dynamics.text is None:
        raise ValueError(f"{wm.source} follows no instructions (dynamics.text=null)")
    sampler = cfg.sampler or wm.sampler
    steps = int(cfg.sampler_steps or wm.sampler_steps)
    full = simulate(
        world, cfg.policy, cfg.noise, cfg.episodes, cfg.start + cfg.horizon, cfg.seed,
        wm.image_size, options, ANY_INSTRUCTION if options else None,
    )  # fmt: skip
    truth, history = window(full, cfg.start, cfg.horizon, wm.dynamics.cfg.context)
    result, pred = compare(
        wm, truth, cfg.seed, sampler, steps, cfg.amp, history, world=world, guidance=cfg.guidance
    )
    model = {"source": str(wm.source), "world": wm.world.name}
    result = {"config": asdict(cfg), "model": model} | result
    text = write_outputs(Path(cfg.out), result, truth, pred, cfg)
    print(text)
    return result


def run_imagine(cfg: CompareConfig) -> dict:
    """The ``imagine`` command: an instruction model imagines ``cfg.instruction`` carried
    out from a simulator reset, beside the world's expert carrying it out in the simulator
    from the same start (``compare`` with one instruction; files as compare writes them)."""
    if not cfg.instruction:
        raise ValueError('imagine needs instruction="..." (what the robot should do)')
    return run_compare(cfg)


def write_outputs(
    out: Path, result: dict, truth: Rollouts, pred: Predictions, cfg: CompareConfig
) -> str:
    """compare.json, compare.md, the plot, the side-by-side video and the contact sheet of
    the first ``cfg.video_episodes`` episodes; returns the captioned table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    text = f"{report.caption(result)}\n\n{report.horizon_table(result['per_horizon'])}"
    (out / "compare.md").write_text(text + "\n")
    label = f"world model ({result['sampler']}, {result['sampler_steps']} step)"
    report.plot_fidelity({label: result["per_horizon"]}, out / "fidelity_over_horizon.png")
    shown = slice(0, max(1, cfg.video_episodes))
    panels = (truth.frames[shown], pred.frames[shown], pred.recon[shown])
    report.write_side_by_side(out / "side_by_side.mp4", *panels, upscale=cfg.upscale)
    report.write_comparison_sheet(out / "contact_sheet.png", *panels)
    files = (
        "compare.json, compare.md, fidelity_over_horizon.png, side_by_side.mp4, contact_sheet.png"
    )
    return f"{text}\n\nwrote {out}/: {files}"
