"""World model vs MuJoCo: the same initial frame and the same actions in both, open loop.

Each episode resets the MuJoCo tabletop with its own seed and rolls a policy out for
``horizon`` steps; the world model starts from the encoded first frame (one-frame context)
and applies the same actions, batched over episodes. Per horizon step h = 1..H the scores
are PSNR and SSIM of the predicted frame against MuJoCo's, the copy-last-frame baseline
(the first frame held), the tokenizer's reconstruction of the true frame (the ceiling), and
the state probe's cube and gripper position errors (cm) against the simulator's state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cosmos_env.config import CompareConfig
from cosmos_env.dynamics.release import WorldModel, load_world_model
from cosmos_env.dynamics.rollout import rollout
from cosmos_env.eval import report
from cosmos_env.eval.metrics import position_errors_cm, psnr, ssim, to_unit
from cosmos_env.generate import episode_seed
from cosmos_env.precision import AmpSetting, autocast, describe_amp, resolve_amp
from cosmos_env.sim.experts import ScriptedExpert
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.sim.tasks import TASKS

POLICIES = ("scripted", "random")
WORLDS = ("tabletop",)
HELD_OUT_SEED = 9_999  # training stores (prepare.py, retrain) use small seeds (0-6)
SUMMARY_HORIZON = 16
Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class Rollouts:
    """MuJoCo ground truth: ``frames`` uint8 (N, T+1, H, W, 3), ``states`` (N, T+1, S),
    ``actions`` float32 (N, T, A) in [-1, 1] (action t follows frame t)."""

    frames: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    seconds: float


@dataclass
class Predictions:
    """World model output for frames 1..T: ``frames`` uint8 (N, T, H, W, 3) and its task
    ``states`` (N, T, S) (the state track's, or the probe's reading of each frame);
    ``recon`` uint8 (N, T+1, H, W, 3) and ``recon_states`` are the tokenizer's
    reconstruction of the true frames and the probe on their latents."""

    frames: np.ndarray
    states: np.ndarray
    recon: np.ndarray
    recon_states: np.ndarray
    seconds: float


@dataclass
class History:
    """Frames before a rollout's first frame, uint8 (N, k-1, H, W, 3), oldest first, their
    states (N, k-1, S), and the actions between them and up to the first frame, float32
    (N, k-1, A)."""

    frames: np.ndarray
    actions: np.ndarray
    states: np.ndarray


def check_choices(world: str, task: str, policy: str) -> None:
    """ValueError naming the bad choice and the valid ones."""
    if world not in WORLDS:
        raise ValueError(f"unknown world {world!r} for compare; choose one of {list(WORLDS)}")
    if task not in TASKS:
        raise ValueError(f"unknown tabletop task {task!r}; choose one of {sorted(TASKS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {list(POLICIES)}")


def make_policy(name: str, task: str, noise: float, seed: int) -> Policy:
    """state (S,) -> action float32 (7,) in [-1, 1]: the scripted expert degraded by
    ``noise``, or uniform random actions; seeded."""
    if name == "scripted":
        return ScriptedExpert(task, noise, seed=seed).act
    if name == "random":
        rng = np.random.default_rng(seed)
        return lambda state: rng.uniform(-1.0, 1.0, 7).astype(np.float32)
    raise ValueError(f"unknown policy {name!r}; choose one of {list(POLICIES)}")


def simulate(
    task: str,
    policy: str,
    noise: float,
    episodes: int,
    horizon: int,
    seed: int,
    image_size: int = 64,
    n_objects: int = 2,
) -> Rollouts:
    """Roll ``policy`` out in MuJoCo for ``horizon`` steps in each of ``episodes`` episodes
    (episode i reset with ``episode_seed(seed, i)``; no early termination)."""
    if episodes < 1 or horizon < 1:
        raise ValueError(f"need episodes >= 1 and horizon >= 1, got {episodes}, {horizon}")
    env = TabletopEnv(task, image_size, n_objects, terminate_on_success=False)
    frames, states, actions = [], [], []
    start = time.perf_counter()
    try:
        for i in tqdm(range(episodes), desc="mujoco", unit="ep"):
            ep_seed = episode_seed(seed, i)
            act = make_policy(policy, task, noise, ep_seed)
            obs, info = env.reset(seed=ep_seed)
            ep_frames, ep_states, ep_actions = [obs], [info["state"]], []
            for _ in range(horizon):
                ep_actions.append(act(info["state"]))
                obs, _, _, _, info = env.step(ep_actions[-1])
                ep_frames.append(obs)
                ep_states.append(info["state"])
            frames.append(np.stack(ep_frames))
            states.append(np.stack(ep_states))
            actions.append(np.stack(ep_actions))
    finally:
        env.close()
    seconds = time.perf_counter() - start
    return Rollouts(np.stack(frames), np.stack(states), np.stack(actions), seconds)


def window(truth: Rollouts, start: int, horizon: int, context: int) -> tuple[Rollouts, History]:
    """The ``horizon`` steps of ``truth`` from frame ``start``, and what came before: up to
    ``context`` - 1 earlier frames with the actions between them (empty at ``start`` 0)."""
    if start < 0 or start + horizon > truth.actions.shape[1]:
        raise ValueError(
            f"start {start} + horizon {horizon} > {truth.actions.shape[1]} simulated steps"
        )
    lo = max(0, start - context + 1)
    part = Rollouts(
        truth.frames[:, start : start + horizon + 1],
        truth.states[:, start : start + horizon + 1],
        truth.actions[:, start : start + horizon],
        truth.seconds,
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
) -> Predictions:
    """Open-loop world-model rollout of ``truth.actions`` from ``truth``'s first frames
    (with ``history`` as extra context), batched over episodes; randomness from a
    generator seeded with ``seed``. A state-track model starts from the simulator's
    states of those frames (both worlds start identical), or with
    ``true_initial_states=False`` from the probe's reading of the frames alone."""
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
    with autocast(resolve_amp(amp)):
        warm = (wm.dynamics, initial, actions[:, :1], torch.Generator(), steps, sampler, past)
        rollout(*warm, start_states)
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        run = (wm.dynamics, initial, actions, generator, steps, sampler, past, start_states)
        latents, states = rollout(*run)
    flat = latents.flatten(0, 1)  # (N * T, C, h, w) or (N * T, h, w) tokens
    flat = flat if wm.discrete else flat.float()
    frames = _decode(wm, flat).reshape(n, t1 - 1, *truth.frames.shape[2:])
    states = states.double().numpy()
    seconds = time.perf_counter() - start
    return Predictions(frames, states, recon, recon_states, seconds)


def frame_scores(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM (each (N, T)) of uint8 frames (N, T, H, W, 3) against ``true``."""
    n, t = pred.shape[:2]
    a, b = (torch.from_numpy(np.ascontiguousarray(x)).flatten(0, 1) for x in (pred, true))

    def scores(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([psnr(to_unit(x), to_unit(y)), ssim(to_unit(x), to_unit(y))], 1)

    both = _chunked(scores, a, b).view(n, t, 2).numpy()
    return both[..., 0], both[..., 1]


def score(truth: Rollouts, pred: Predictions) -> dict[str, list[float]]:
    """Per-horizon means over episodes, h = 1..T (each list has T entries)."""
    future, held = truth.frames[:, 1:], np.repeat(truth.frames[:, :1], truth.actions.shape[1], 1)
    wm_psnr, wm_ssim = frame_scores(pred.frames, future)
    copy_psnr, copy_ssim = frame_scores(held, future)
    tok_psnr, tok_ssim = frame_scores(pred.recon[:, 1:], future)
    true_states = truth.states[:, 1:]
    curves = {
        "psnr": wm_psnr,
        "ssim": wm_ssim,
        "copy_last_psnr": copy_psnr,
        "copy_last_ssim": copy_ssim,
        "tokenizer_psnr": tok_psnr,
        "tokenizer_ssim": tok_ssim,
        "cube_err_cm": position_errors_cm(pred.states, true_states, "cube_pos"),
        "gripper_err_cm": position_errors_cm(pred.states, true_states, "gripper_pos"),
        "probe_on_true_cube_err_cm": position_errors_cm(
            pred.recon_states[:, 1:], true_states, "cube_pos"
        ),
    }
    per_horizon = {"h": list(range(1, truth.actions.shape[1] + 1))}
    per_horizon |= {k: [float(x) for x in v.mean(axis=0)] for k, v in curves.items()}
    return per_horizon


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
    summary["state_err_h16_cm"] = per_horizon["cube_err_cm"][ref - 1]
    summary["gripper_err_h16_cm"] = per_horizon["gripper_err_cm"][ref - 1]
    summary["probe_on_true_cube_err_h16_cm"] = per_horizon["probe_on_true_cube_err_cm"][ref - 1]
    return summary


def compare(
    wm: WorldModel,
    truth: Rollouts,
    seed: int,
    sampler: str,
    steps: int,
    amp: AmpSetting = "auto",
    history: History | None = None,
    true_initial_states: bool = True,
) -> tuple[dict, Predictions]:
    """Scores of one world-model setting on ``truth``: per-horizon curves, summary, timing."""
    pred = predict(wm, truth, seed, sampler, steps, amp, history, true_initial_states)
    per_horizon = score(truth, pred)
    n_frames = truth.actions.shape[0] * truth.actions.shape[1]
    timing = {
        "mujoco_s": truth.seconds,
        "world_model_s": pred.seconds,
        "mujoco_frames_per_s": n_frames / truth.seconds,
        "world_model_frames_per_s_batched": n_frames / pred.seconds,
    }
    result = {"sampler": sampler, "sampler_steps": steps, "amp": describe_amp(amp)}
    result["summary"] = summarise(per_horizon)
    return result | {"per_horizon": per_horizon, "timing": timing}, pred


def run_compare(cfg: CompareConfig, world_model: WorldModel | None = None) -> dict:
    """The ``compare`` command: simulate, predict, score, write files to ``cfg.out`` and
    print the table; returns what ``compare.json`` holds."""
    check_choices(cfg.world.name, cfg.task, cfg.policy)
    wm = world_model or load_world_model(cfg.checkpoint)
    sampler = cfg.sampler or wm.sampler
    steps = int(cfg.sampler_steps or wm.sampler_steps)
    full = simulate(
        cfg.task,
        cfg.policy,
        cfg.noise,
        cfg.episodes,
        cfg.start + cfg.horizon,
        cfg.seed,
        wm.image_size,
        cfg.world.n_objects,
    )
    truth, history = window(full, cfg.start, cfg.horizon, wm.dynamics.cfg.context)
    result, pred = compare(wm, truth, cfg.seed, sampler, steps, cfg.amp, history)
    model = {"source": str(wm.source), "task": wm.task}
    result = {"config": asdict(cfg), "model": model} | result
    text = write_outputs(Path(cfg.out), result, truth, pred, cfg)
    print(text)
    return result


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
