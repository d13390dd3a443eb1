"""The one training loop (`fit`) and its pieces: the learning-rate schedule over a step or
wall-clock budget, the optimiser step with clipping, EMA weights, the resumable training
state, the log file and the TensorBoard board. Every trainer (tokenizer, diffusion, AR)
supplies only its step's objective and its evaluation. Under ``torchrun`` the loop runs
data-parallel (`cosmos_env.distributed`): rank 0 evaluates, logs, saves and releases."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from cosmos_env import checkpoint
from cosmos_env.distributed import (
    agree,
    average_gradients,
    broadcast_module,
    init_from_environment,
    launched_rank,
    local_size,
    ranks,
)
from cosmos_env.machine import set_torch_threads, usable_cores
from cosmos_env.precision import AmpSetting, amp_text, resolve_amp


def budget_lr(
    base_lr: float, warmup: int, steps: int, max_minutes: float, step: int, elapsed: float
) -> float:
    """Warmup, then cosine to 2% over whichever budget (steps or minutes) runs out first."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    by_steps = (step - warmup) / max(1, steps - warmup)
    progress = max(by_steps, elapsed / (max_minutes * 60))
    return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module) -> None:
    """One step on ``loss`` with the gradient norm clipped to 1 (the gradients averaged
    over the ranks first, when data-parallel)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(model.parameters())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """EMA of the parameters, with a decay that ramps up over the first steps."""
    rate = 1 - min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, rate)


def file_logger(name: str, out: Path) -> logging.Logger:
    """A logger writing timestamped lines to ``out/train.log`` (``train.rank<N>.log`` in
    the other processes of a data-parallel run)."""
    rank = launched_rank()
    log = logging.getLogger(f"cosmos_env.{name}.{out}")
    log.setLevel(logging.INFO)
    if not log.handlers:
        handler = logging.FileHandler(out / ("train.log" if rank == 0 else f"train.rank{rank}.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log


class Board:
    """TensorBoard event files in ``out/tensorboard``, beside ``train.log``: scalars per
    step and sample frames at evaluations (``tensorboard --logdir OUT``). The writer opens
    on first use, so a run that logs nothing leaves no directory (`fit` logs only on rank 0
    of a data-parallel run)."""

    def __init__(self, out: Path) -> None:
        self.directory = Path(out) / "tensorboard"
        self._writer = None

    def _open(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.directory))
        return self._writer

    def scalars(self, step: int, values: dict[str, float], group: str = "train") -> None:
        """``values`` (name -> number or 0-d tensor) at ``step`` under ``group/name``."""
        writer = self._open()
        for name, value in values.items():
            writer.add_scalar(f"{group}/{name}", float(value), step)

    def frames(self, step: int, tag: str, frames: torch.Tensor) -> None:
        """A row of sample frames, uint8 (N, H, W, 3), at ``step``."""
        self._open().add_images(tag, frames.permute(0, 3, 1, 2).contiguous(), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def fit_machine(threads: int, amp: AmpSetting, log: logging.Logger) -> bool:
    """Torch threads for this machine (``threads``, or 0 for the usable cores, shared among
    the data-parallel processes on it) and the resolved bf16 autocast choice of ``amp``,
    both written to the log; returns the latter. Joins torchrun's process group, if any."""
    group = init_from_environment()
    if not threads and local_size() > 1:  # the processes on this machine share its cores
        threads = max(1, usable_cores() // local_size())
    count = set_torch_threads(threads)
    enabled = resolve_amp(amp)
    log.info("%d torch threads on %d usable cores; %s", count, usable_cores(), amp_text(amp))
    if group.parallel:
        log.info("data-parallel: rank %d of %d processes (gloo)", group.rank, group.size)
    return enabled


def resume_training(
    path: Path,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    opt: torch.optim.Optimizer,
    log: logging.Logger,
) -> tuple[int, float]:
    """Load the state ``save_training`` wrote into model, EMA and optimiser; return the
    step and the seconds already spent."""
    state = checkpoint.load_training_state(path)
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    step, elapsed = int(state["step"]), float(state["elapsed"])
    log.info("resumed from step %d (%.1f min already spent)", step, elapsed / 60)
    return step, elapsed


def save_training(
    path: Path,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    opt: torch.optim.Optimizer,
    step: int,
    elapsed: float,
) -> None:
    """Write what a run needs to resume: weights, EMA weights, optimiser, step, time."""
    state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict()}
    checkpoint.save_training_state(path, state | {"step": step, "elapsed": elapsed})


def reseeder(
    seed: int, rng: np.random.Generator, gen: torch.Generator | None = None
) -> Callable[[int], None]:
    """`fit`'s ``reseed``: on resuming at ``step``, reseed ``rng`` (and ``gen``) in place from
    (seed, step), so a resumed run draws new batches, and the same ones on every resume.
    In a data-parallel run every rank reseeds from (seed, step, rank), so that each draws
    its own batches (and its own torch default-generator draws)."""

    def reseed(step: int) -> None:
        group = ranks()
        key = [seed, step, group.rank] if group.parallel else [seed, step]
        rng.bit_generator.state = np.random.default_rng(key).bit_generator.state
        if gen is not None:
            gen.manual_seed(seed + step + 1_000_003 * group.rank)
        if group.parallel:
            torch.manual_seed(seed + step + 1_000_003 * group.rank)

    return reseed


class LoopSettings(Protocol):
    """The fields of a training config that `fit` reads (every Train*Config has them)."""

    steps: int
    max_minutes: float
    lr: float
    warmup_steps: int
    ema_decay: float
    eval_every: int
    save_every: int
    resume: bool


# One step's objective and the terms to log (name -> 0-d tensor).
StepFn = Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]
# Held-out scores of the EMA model at a step; ``final`` asks for the full evaluation.
EvalFn = Callable[[int, bool], dict[str, float]]


def _log_terms(step, terms, lr: float, elapsed: float, bar, board: Board, log) -> None:
    """A training step's terms on the progress bar (the first two), the board and train.log."""
    bar.set_postfix({k: f"{float(v):.4f}" for k, v in list(terms.items())[:2]})
    board.scalars(step, {**terms, "lr": lr})
    text = " ".join(f"{k} {float(v):.5f}" for k, v in terms.items())
    log.info("step %d %s lr %.2e elapsed %.1f min", step, text, lr, elapsed / 60)


def _resume(
    cfg: LoopSettings,
    state: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    state_path: Path,
    log: logging.Logger,
    reseed: Callable[[int], None],
) -> tuple[int, float]:
    """(step, elapsed seconds) to start from: the saved training state's where there is one
    (and ``resume`` allows it). A resumed or data-parallel run is reseeded, so that it draws
    new batches, and every rank starts from rank 0's weights."""
    model, ema, opt = state
    step, elapsed = 0, 0.0
    resumed = cfg.resume and state_path.exists()
    if resumed:
        step, elapsed = resume_training(state_path, model, ema, opt, log)
    if resumed or ranks().parallel:
        reseed(step)
    broadcast_module(model)
    broadcast_module(ema)
    return step, elapsed


BAR = {"unit": "step", "mininterval": 2.0}  # a redirected log gains a line per update


def _train_one_step(
    state: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    train_step: StepFn,
    lr: float,
    step: int,
    ema_decay: float,
) -> dict[str, torch.Tensor]:
    """Optimise ``train_step()``'s objective at ``lr`` and update the EMA; return its terms."""
    model, ema, opt = state
    model.train()
    for group in opt.param_groups:
        group["lr"] = lr
    objective, terms = train_step()
    optimise(opt, objective, model)
    update_ema(ema, model, step, ema_decay)
    return terms


def fit(
    cfg: LoopSettings,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    opt: torch.optim.Optimizer,
    out: Path,
    log: logging.Logger,
    board: Board,
    train_step: StepFn,
    evaluate: EvalFn,
    reseed: Callable[[int], None] = lambda step: None,
    desc: str = "train",
    after_step: Callable[[int], None] = lambda step: None,
) -> tuple[int, float, dict[str, float]]:
    """The one training loop every trainer runs: resume from ``out/train_state.pt`` (then
    ``reseed(step)`` so a resumed run draws new batches), and until ``cfg.steps`` or
    ``cfg.max_minutes`` run out: set the scheduled lr, optimise ``train_step()``'s objective,
    update the EMA, log the terms every 50 steps (train.log and the board), evaluate every
    ``cfg.eval_every`` steps and save every ``cfg.save_every``, then call
    ``after_step(step)`` (a trainer's own milestones: BC's releases). Then save, evaluate in
    full (the board's "final" group) and return (steps, wall seconds, the final scores).

    Data-parallel (torchrun): every rank resumes from the same ``out`` (a shared file
    system), starts from rank 0's weights, reseeds per rank and stops when rank 0's budget
    does; rank 0 alone logs, evaluates and saves, and the others return empty scores."""
    place = ranks()
    state_path = out / "train_state.pt"
    step, elapsed = _resume(cfg, (model, ema, opt), state_path, log, reseed)

    def lr() -> float:
        return budget_lr(cfg.lr, cfg.warmup_steps, cfg.steps, cfg.max_minutes, step, elapsed)

    def scored(final: bool) -> dict[str, float]:
        ema.eval()
        scores = evaluate(step, final)
        log.info("step %d eval (EMA) %s", step, {k: round(v, 4) for k, v in scores.items()})
        board.scalars(step, scores, "final" if final else "eval")
        return scores

    start = time.perf_counter() - elapsed
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not place.main, **BAR)
    while agree(step < cfg.steps and (time.perf_counter() - start) < cfg.max_minutes * 60):
        terms = _train_one_step((model, ema, opt), train_step, lr(), step, cfg.ema_decay)
        step += 1
        elapsed = time.perf_counter() - start
        bar.update()
        if place.main:
            if step % 50 == 0:
                _log_terms(step, terms, lr(), elapsed, bar, board, log)
            if step % cfg.eval_every == 0:
                scored(final=False)
            if step % cfg.save_every == 0:
                save_training(state_path, model, ema, opt, step, elapsed)
            after_step(step)
    bar.close()
    wall = time.perf_counter() - start
    if not place.main:
        log.info("finished: %d steps in %.1f min (rank %d)", step, wall / 60, place.rank)
        return step, wall, {}
    save_training(state_path, model, ema, opt, step, elapsed)
    metrics = scored(final=True)
    log.info("finished: %d steps in %.1f min", step, wall / 60)
    return step, wall, metrics
