"""The diffusion backend's training configurations, beside their trainers: ``train-dynamics``
(``conf/train_dynamics.yaml``) and ``refit-state-track`` (``conf/refit_state.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosmos_env.dynamics.diffusion.config import DiffusionConfig, FrameHeadConfig


@dataclass
class PostTrainConfig:
    """Start from a pre-trained base (``dynamics/diffusion/base.py``) instead of from
    scratch: its network, latent standardisation, tokenizer and weights. ``adapter_rank``
    > 0 freezes the base's weights and trains low-rank adapters beside what it lacks
    (actions, state track, heads); 0 fine-tunes every weight."""

    base: str = "base-64"  # a shipped base's name or a base release directory
    adapter_rank: int = 16


@dataclass
class TrainDynamicsConfig:
    dynamics: DiffusionConfig = field(default_factory=DiffusionConfig)
    post_train: PostTrainConfig | None = None
    tokenizer: str = "CI8x8"  # shipped name or release directory; its latents must be cached
    data: str = "datasets/tabletop/data"
    stores: str = "push-*"  # glob over the store directory names under `data`
    out: str = "outputs/dynamics/diffusion-push"
    # State-track features to switch on where the stores' StateSpec roles allow them
    # (dynamics/state_features.py); slots the dynamics config names explicitly win.
    state_features: list[str] = field(
        default_factory=lambda: ["integrator", "contact", "keypoints", "frame_head"]
    )
    outcome_weight: float = 1.0  # weight of the outcome heads' loss
    steps: int = 20000
    max_minutes: float = 30.0  # stop early (and release) when the wall-clock budget is spent
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    probe_weight: float = 1.0
    early_fraction: float = 0.25  # share of each batch from the first early_steps of episodes
    early_steps: int = 16
    unroll_fraction: float = 0.0  # share of batches predicted from the model's own last frame
    state_batch: int = 0  # extra state-only windows per step for the state track (0: none)
    amp: Any = "auto"  # "auto" | true | false: bf16 autocast ("auto": where the CPU has it)
    sampler: str = "euler"  # the release's default sampler and steps
    sampler_steps: int = 1
    eval_every: int = 500
    save_every: int = 500
    eval_windows: int = 512
    val_fraction: float = 0.1
    reset_frames: int = 128  # held-out first frames shipped for the env's default reset
    seed: int = 0
    threads: int = 0
    resume: bool = True


@dataclass
class RefitStateConfig:
    """``refit-state-track``: train a released world model's state track anew
    (``dynamics/refit_state.py``); ``frame_head`` sets the new track's gripper-frame
    head (``null``: the state MLP alone). It runs the one training loop (``training.fit``):
    resumable, with a wall-clock budget; ``ema_decay`` 0 keeps no average (the release is
    the trained track itself)."""

    world_model: str = "diffusion-push"  # shipped name or release directory
    data: str = "datasets/tabletop/data"  # the stores the world model was trained on
    stores: str = "push-*"
    extra_data: str | None = None  # more stores (or a dir of them) for the track alone
    out: str = "outputs/dynamics/refit-state"
    frame_head: FrameHeadConfig | None = field(
        default_factory=lambda: FrameHeadConfig(["cube"], "gripper_quat")
    )
    steps: int = 6000
    max_minutes: float = 30.0
    batch_size: int = 512
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    ema_decay: float = 0.0
    eval_every: int = 2000
    save_every: int = 1000
    resume: bool = True
    eval_windows: int = 512
    val_fraction: float = 0.1  # as the world model's training: the same held-out episodes
    seed: int = 0
    threads: int = 0
