"""Release checkpoints: ``model.safetensors`` + ``config.json`` (+ ``card.md``), written
atomically; training state as ``.pt`` loaded with ``weights_only=True``.

A save never leaves a half-written release where a good one was: files go to a temporary
sibling directory that replaces the target only once complete. ``config.json`` records the
sha256 of every file a loader reads (``"sha256": {"model.safetensors": ..., ...}``), and
loading checks it, so a file that changed after release is refused, never read wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
WEIGHTS_FILE = "model.safetensors"
DIGESTS = "sha256"  # config.json's key: file name -> hex sha256 of the file
WEIGHTS = "weights"  # config.json's key: the format the parameters are stored in
WEIGHT_FORMATS = ("float32", "float16", "int8")
SCALE_SUFFIX = "@scale"  # "name@scale": the per-row scales of int8 tensor "name"
INT8_MIN_NUMEL = 1024  # smaller parameters (biases, norms, gains) stay float16 under int8


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or does not match its config."""


class UnverifiedCheckpointWarning(UserWarning):
    """A release's config.json records no sha256 of a file it loads (an older release)."""


def save_release(
    directory: Path,
    model: torch.nn.Module,
    config: dict[str, Any],
    card: str = "",
    files: dict[str, bytes] | None = None,
    weights: str = "float32",
    keys: set[str] | None = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``card.md`` and any extra ``files``
    (name -> bytes) to ``directory`` atomically; config.json gains the sha256 of the weights
    and of every extra file, and the ``weights`` format. ``weights`` stores floating-point
    parameters (buffers stay float32) as "float32", "float16" (half the file) or "int8"
    (about a quarter: each row of a matrix or kernel of at least ``INT8_MIN_NUMEL`` values
    as int8 times one float32 scale, symmetric; the rest float16). Loading casts them back
    to the model's dtype; float16 and int8 change the predictions slightly, so measure a
    release in the format it ships in. A tensor registered under several names (a shared
    module, tied weights) is stored once. ``keys`` stores only those state-dict entries (a
    post-trained release: what post-training changed)."""
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights={weights!r}: the formats are {', '.join(WEIGHT_FORMATS)}")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a release is meant to be read by all
    try:
        tensors = _tensors_to_save(model, weights)
        if keys is not None:
            tensors = {k: v for k, v in tensors.items() if k.split(SCALE_SUFFIX)[0] in keys}
        save_file(tensors, tmp / WEIGHTS_FILE)
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        digests = {name: file_sha256(tmp / name) for name in [WEIGHTS_FILE, *(files or {})]}
        config = {**config, WEIGHTS: weights, DIGESTS: digests}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if card:
            (tmp / "card.md").write_text(card)
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


def _tensors_to_save(model: torch.nn.Module, weights: str) -> dict[str, torch.Tensor]:
    """The state dict with each aliased tensor once (safetensors refuses shared memory),
    on the CPU, floating-point parameters in the ``weights`` format."""
    state = model.state_dict()
    aliases = _aliases(state)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items() if k not in aliases}
    if weights == "float32":
        return tensors
    params = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    for key in sorted(params & set(tensors)):
        value = tensors[key]
        if not value.is_floating_point():
            continue
        if weights == "int8" and value.dim() >= 2 and value.numel() >= INT8_MIN_NUMEL:
            tensors[key], tensors[key + SCALE_SUFFIX] = quantize_int8(value)
        else:
            tensors[key] = value.half()
    return tensors


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``weight`` (rows, ...) -> (int8 of its shape, float32 (rows,)
    scales) with ``weight ~= q * scale`` row by row; an all-zero row gets scale 1."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    scale = rows.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape).contiguous(), scale.contiguous()


def _dequantized(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The stored tensors with each int8 tensor and its ``@scale`` rows multiplied back."""
    out = {k: v for k, v in tensors.items() if not k.endswith(SCALE_SUFFIX)}
    for key, scale in tensors.items():
        if key.endswith(SCALE_SUFFIX):
            name = key[: -len(SCALE_SUFFIX)]
            q = out[name]
            out[name] = (q.float().reshape(q.shape[0], -1) * scale[:, None]).reshape(q.shape)
    return out


def _aliases(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """State-dict names that are the very tensor of an earlier name -> that name."""
    first: dict[tuple, str] = {}
    aliases = {}
    for name, t in state.items():
        if t.numel() == 0:
            continue
        key = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(directory: Path, name: str) -> bytes:
    """The bytes of ``directory/name``, read once and checked against the sha256 that
    ``config.json`` records: a mismatch is a `CheckpointError` naming the file and both
    digests; a release that records none (saved before digests) warns and loads."""
    return _read_checked(Path(directory), name)[0]


def _read_checked(directory: Path, name: str) -> tuple[bytes, str]:
    """`read_verified`, also returning the file's hex sha256."""
    path = directory / name
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    digests = read_config(directory).get(DIGESTS, {})
    if not isinstance(digests, dict):
        raise CheckpointError(f"{directory}/config.json: '{DIGESTS}' is not a name -> digest map")
    expected, actual = digests.get(name), hashlib.sha256(data).hexdigest()
    if expected is None:
        warnings.warn(
            f"{directory}/config.json records no sha256 of {name} (a release saved before "
            "digests were recorded), so corruption of the file cannot be detected; re-export "
            "the release, or if you trust the file, record its digest with "
            f"cosmos_env.checkpoint.record_digests({str(directory)!r}, [{name!r}])",
            UnverifiedCheckpointWarning,
            stacklevel=4,
        )
    elif actual != expected:
        raise CheckpointError(
            f"{path} is corrupt: its sha256 is {actual}, but {directory}/config.json records "
            f"{expected}. The file changed after release (a broken download, copy or disk, "
            "or an edit); re-download the checkpoint or re-export it from its training run"
        )
    return data, actual


def record_digests(directory: Path, names: list[str]) -> dict[str, str]:
    """Add the sha256 of ``names`` (files in ``directory``) to its ``config.json``, the
    other entries unchanged; for an older release whose files you trust. Returns the map."""
    directory = Path(directory)
    config = read_config(directory)
    config[DIGESTS] = {**config.get(DIGESTS, {}), **{n: file_sha256(directory / n) for n in names}}
    tmp = directory / ".config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, directory / "config.json")
    return config[DIGESTS]


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


def portable_source(directory: str | Path) -> str:
    """How a release records another checkpoint it needs: a shipped one by name (its path
    differs between installs), any other by its path."""
    source = Path(directory).resolve()
    if source.parent == PRETRAINED_DIR.resolve():
        return source.name
    return str(source)


def read_config(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {directory}/config.json: {e}") from e


def load_weights(directory: Path, model: torch.nn.Module, partial: bool = False) -> str:
    """Load ``model.safetensors`` into ``model`` after checking its sha256 (`read_verified`)
    and return that hex digest; any missing, unexpected or mis-shaped tensor is a
    `CheckpointError` that says the weights do not match the config. ``partial`` allows
    missing tensors (a post-trained release on top of its base's)."""
    path = Path(directory) / WEIGHTS_FILE
    data, digest = _read_checked(Path(directory), WEIGHTS_FILE)
    try:
        tensors = _dequantized(load(data))
    except Exception as e:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"cannot read {path}: {e}") from e
    expected = model.state_dict()
    aliases = _aliases(expected)  # stored once, under their first name
    missing = [] if partial else sorted(set(expected) - set(aliases) - set(tensors))
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
    tensors |= {a: tensors[n] for a, n in aliases.items() if a not in tensors and n in tensors}
    model.load_state_dict(tensors, strict=not partial)
    return digest


def weights_checksum(directory: Path, length: int = 12) -> str:
    """Short sha256 of ``model.safetensors``: names caches made with these weights (a
    loaded tokenizer gets it from `load_weights`, without reading the file again)."""
    return file_sha256(Path(directory) / WEIGHTS_FILE)[:length]


def save_training_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a crash keeps the previous state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
