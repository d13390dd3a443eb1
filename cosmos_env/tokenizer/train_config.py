"""``train-tokenizer``'s configuration (``conf/train_tokenizer.yaml``), beside its trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosmos_env.tokenizer.config import TokenizerConfig


@dataclass
class TrainTokenizerConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: str = "datasets/tabletop/data"
    out: str = "outputs/tokenizers/CI8x8"
    init: str | None = None  # a released tokenizer (name or directory) to fine-tune from
    steps: int = 10000
    max_minutes: float = 27.0  # stop early (and release) when the wall-clock budget is spent
    batch_size: int = 64
    clip_frames: int = 1  # 1 for image tokenizers; 1 + k * temporal_factor for video
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_weight: float = 0.5  # image-gradient (structural) loss
    mse_weight: float = 10.0
    temporal_weight: float = 0.5  # temporal-difference loss (video only)
    amp: Any = "auto"  # "auto" | true | false: bf16 autocast ("auto": where the CPU has it)
    eval_every: int = 500
    save_every: int = 500
    eval_frames: int = 256
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 0  # 0 = torch's default (all cores)
    resume: bool = True
