"""``train-dynamics dynamics=ar``'s configuration (``conf/train_ar.yaml``), beside its trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.state_features import FEATURES


@dataclass
class TrainARConfig:
    """``train-dynamics dynamics=ar``: the autoregressive world model on cached tokens."""

    dynamics: ARConfig = field(default_factory=ARConfig)
    tokenizer: str = "DI8x8"  # a discrete tokenizer (name or release); its tokens cached
    data: str = "datasets/tabletop/data"
    stores: str = "push-*"  # glob over the store directory names under `data`
    out: str = "outputs/dynamics/ar-push"
    # State-track features switched on where the stores' StateSpec roles allow them
    # (dynamics/state_features.py); slots the dynamics config names explicitly win.
    state_features: list[str] = field(default_factory=lambda: list(FEATURES))
    state_batch: int = 512  # extra state-only windows per step for the state track
    outcome_weight: float = 1.0  # weight of the outcome heads' loss
    steps: int = 20000
    max_minutes: float = 45.0  # stop early (and release) when the wall-clock budget is spent
    batch_size: int = 32
    lr: float = 6e-4
    warmup_steps: int = 200
    weight_decay: float = 0.1  # on matrices and embeddings only
    ema_decay: float = 0.999
    parallel_weight: float = 1.0  # MaskGIT loss beside the teacher-forced one, same batch
    probe_weight: float = 1.0
    early_fraction: float = 0.25  # share of each batch from the first early_steps of episodes
    early_steps: int = 16
    amp: Any = "auto"  # "auto" | true | false: bf16 autocast ("auto": where the CPU has it)
    sampler: str = "parallel"  # the release's default decoder: parallel | autoregressive
    sampler_steps: int = 1  # MaskGIT passes per frame (parallel); argmax: one scores as 8
    eval_every: int = 500
    save_every: int = 500
    eval_windows: int = 512
    val_fraction: float = 0.1
    reset_frames: int = 128  # held-out first frames shipped for the env's default reset
    seed: int = 0
    threads: int = 0
    resume: bool = True
