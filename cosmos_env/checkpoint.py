"""Release checkpoints: ``model.safetensors`` + ``config.json`` (+ ``card.md``), written
atomically; training state as ``.pt`` loaded with ``weights_only=True``.

A save never leaves a half-written release where a good one was: files go to a temporary
sibling directory that replaces the target only once complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or does not match its config."""


def save_release(
    directory: Path,
    model: torch.nn.Module,
    config: dict[str, Any],
    card: str = "",
    files: dict[str, bytes] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``card.md`` and any extra ``files``
    (name -> bytes) to ``directory`` atomically. ``half`` stores floating-point parameters
    as float16 (buffers stay float32) to halve the file; loading casts them back."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a release is meant to be read by all
    try:
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        if half:
            params = {name for name, _ in model.named_parameters()}
            for key in params & set(tensors):
                if tensors[key].is_floating_point():
                    tensors[key] = tensors[key].half()
        save_file(tensors, tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if card:
            (tmp / "card.md").write_text(card)
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        for path in tmp.iterdir():
            path.chmod(0o644)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def resolve(name_or_path: str | Path) -> Path:
    """A shipped checkpoint's name (e.g. ``CI8x8``) or a directory path -> its directory."""
    path = Path(name_or_path)
    if (path / "config.json").exists():
        return path
    shipped = PRETRAINED_DIR / str(name_or_path)
    if (shipped / "config.json").exists():
        return shipped
    shipped_dirs = PRETRAINED_DIR.iterdir() if PRETRAINED_DIR.exists() else []
    available = sorted(p.name for p in shipped_dirs if (p / "config.json").exists())
    raise CheckpointError(
        f"no checkpoint at {name_or_path!r}: not a directory with config.json, and not a "
        f"shipped checkpoint (shipped: {available})"
    )


def read_config(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {directory}/config.json: {e}") from e


def load_weights(directory: Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model``; any missing, unexpected or mis-shaped
    tensor is a `CheckpointError` that says the weights do not match the config."""
    path = Path(directory) / "model.safetensors"
    try:
        tensors = load_file(path)
    except Exception as e:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"cannot read {path}: {e}") from e
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path} does not match its config.json: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}. "
            "The config and the weights come from different models; re-export the checkpoint"
        )
    model.load_state_dict(tensors)


def weights_checksum(directory: Path, length: int = 12) -> str:
    """Short sha256 of ``model.safetensors``: names caches made with these weights."""
    digest = hashlib.sha256((Path(directory) / "model.safetensors").read_bytes()).hexdigest()
    return digest[:length]


def save_training_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a crash keeps the previous state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
