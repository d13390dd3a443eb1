"""Loading shipped or trained tokenizers from ``config.json`` + ``model.safetensors``."""

from __future__ import annotations

from pathlib import Path

import torch

from cosmos_env import checkpoint
from cosmos_env.eval.metrics import to_uint8, to_unit
from cosmos_env.tokenizer.config import TokenizerConfig
from cosmos_env.tokenizer.model import Tokenizer


def tokenizer_config(name_or_path: str | Path) -> TokenizerConfig:
    """The config of a shipped tokenizer or release directory, its weights not read."""
    directory = checkpoint.resolve(name_or_path)
    raw = checkpoint.read_config(directory)
    if "tokenizer" not in raw:
        raise checkpoint.CheckpointError(
            f"{directory}/config.json has no 'tokenizer' section: not a tokenizer checkpoint"
        )
    try:
        return TokenizerConfig.from_dict(raw["tokenizer"])
    except (TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{directory}/config.json is invalid: {e}") from e


def load_tokenizer(name_or_path: str | Path) -> Tokenizer:
    """A shipped tokenizer by name (``CI8x8``, ``DI8x8``) or a release directory, in eval
    mode, with ``.checksum`` (of its weights) and ``.source`` (its directory) set."""
    directory = checkpoint.resolve(name_or_path)
    model = Tokenizer(tokenizer_config(directory))
    digest = checkpoint.load_weights(directory, model)  # checked against config.json
    model.eval().requires_grad_(False)
    model.checksum = digest[:12]  # = checkpoint.weights_checksum(directory)
    model.source = directory
    return model


def save_tokenizer(
    directory: str | Path,
    model: Tokenizer,
    card: str = "",
    files: dict[str, bytes] | None = None,
    **extra,
) -> Path:
    """Release ``model`` (its config travels with the weights; parameters are stored as
    float16, which changes reconstructions by far less than 0.01 dB and halves the file)."""
    config = {"tokenizer": model.cfg.to_dict(), **extra}
    return checkpoint.save_release(Path(directory), model, config, card, files, weights="float16")


@torch.inference_mode()
def encode_frames(model: Tokenizer, frames_uint8: torch.Tensor) -> torch.Tensor:
    """Image tokenizer on uint8 frames (N, H, W, 3) -> latents (N, C, H/s, W/s)."""
    return model.encode(to_unit(frames_uint8))[:, :, 0]


@torch.inference_mode()
def decode_frames(model: Tokenizer, latents: torch.Tensor) -> torch.Tensor:
    """Image tokenizer on latents (N, C, h, w) -> uint8 frames (N, H, W, 3)."""
    return to_uint8(model.decode(latents.unsqueeze(2))[:, :, 0].float())  # bf16 under autocast
