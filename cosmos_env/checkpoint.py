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
    half: bool = False,
    keys: set[str] | None = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``card.md`` and any extra ``files``
    (name -> bytes) to ``directory`` atomically; config.json gains the sha256 of the weights
    and of every extra file. ``half`` stores floating-point parameters as float16 (buffers
    stay float32) to halve the file; loading casts them back. A tensor registered under
    several names (a shared module, tied weights) is stored once. ``keys`` stores only
    those state-dict entries (a post-trained release: what post-training changed)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a release is meant to be read by all
    try:
        tensors = _tensors_to_save(model, half)
        if keys is not None:
            tensors = {k: v for k, v in tensors.items() if k in keys}
        save_file(tensors, tmp / WEIGHTS_FILE)
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        digests = {name: file_sha256(tmp / name) for name in [WEIGHTS_FILE, *(files or {})]}
        config = {**config, DIGESTS: digests}
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


def _tensors_to_save(model: torch.nn.Module, half: bool) -> dict[str, torch.Tensor]:
    """The state dict with each aliased tensor once (safetensors refuses shared memory),
    on the CPU, parameters in float16 if ``half``."""
    state = model.state_dict()
    aliases = _aliases(state)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items() if k not in aliases}
    if half:
        params = {name for name, _ in model.named_parameters(remove_duplicate=False)}
        for key in params & set(tensors):
            if tensors[key].is_floating_point():
                tensors[key] = tensors[key].half()
    return tensors


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
        tensors = load(data)
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
