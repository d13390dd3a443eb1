"""The world-model release: dynamics weights + config (naming the tokenizer and the
checksum of its weights) + held-out reset frames, and loading it with its tokenizer.

A dynamics model only understands the latents of the exact tokenizer weights it was
trained on, so loading checks the pair and refuses a mismatch.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from cosmos_env import checkpoint
from cosmos_env.data.world import WorldInfo, store_world
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.backends import backend_of_kind, get_backend
from cosmos_env.dynamics.data import held_out_reset_frames
from cosmos_env.dynamics.diffusion.base import is_base, rebuild_post_trained
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.eval.metrics import to_uint8, to_unit
from cosmos_env.tokenizer.model import Tokenizer
from cosmos_env.tokenizer.release import decode_frames, encode_frames, load_tokenizer

if TYPE_CHECKING:
    from cosmos_env.dynamics.autoregressive.train_config import TrainARConfig
    from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig

DEFAULT_WORLD_MODEL = "diffusion-push"
RESET_FILE = "reset_frames.npz"


@dataclass
class WorldModel:
    """A tokenizer and the latent dynamics trained on its latents, with the world the
    model was trained on, its default sampler and held-out reset frames:
    ``reset_frames`` uint8 (N, H, W, 3) and their ``reset_states`` (N, S)."""

    tokenizer: Tokenizer
    dynamics: LatentDynamics | TokenDynamics
    world: WorldInfo
    sampler: str
    sampler_steps: int
    reset_frames: np.ndarray
    reset_states: np.ndarray
    source: Path
    outcomes: tuple[str, ...] = ()  # the store columns its outcome heads learned

    @property
    def action_dim(self) -> int:
        return self.world.action_spec.dim

    @property
    def image_size(self) -> int:
        return self.dynamics.cfg.latent_size * self.tokenizer.cfg.spatial_factor

    @property
    def backend(self) -> str:
        """The env backend this model serves: "ar" for a token model, else "diffusion"."""
        return "ar" if self.discrete else "diffusion"

    @property
    def discrete(self) -> bool:
        """True for a token model (the AR backend): its latents are token indices."""
        return isinstance(self.dynamics, TokenDynamics)

    @torch.inference_mode()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) -> what the dynamics reads: latents (N, C, h, w), or
        token indices (N, h, w) int64 for a token model."""
        if self.discrete:
            return self.tokenizer.tokenize(to_unit(frames).unsqueeze(2))[:, 0]
        return encode_frames(self.tokenizer, frames)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, h, w) or token indices (N, h, w) -> uint8 frames (N, H, W, 3)."""
        if self.discrete:
            return to_uint8(self.tokenizer.detokenize(latents.long()[:, None])[:, :, 0].float())
        return decode_frames(self.tokenizer, latents)


def shipped_catalogue() -> dict[str, dict[str, str]]:
    """World name -> {backend: shipped checkpoint name} of the shipped world models that
    make envs (an action-free instruction->video model makes none), read from their configs."""
    catalogue: dict[str, dict[str, str]] = {}
    for config in sorted(checkpoint.PRETRAINED_DIR.glob("*/config.json")):
        raw = json.loads(config.read_text())
        if "dynamics" not in raw or "world" not in raw:
            continue
        if not raw["dynamics"].get("actions", True):  # instruction->video: no env
            continue
        kind = raw["dynamics"].get("kind", "diffusion")
        backend = backend_of_kind(kind).name
        catalogue.setdefault(raw["world"]["name"], {})[backend] = config.parent.name
    return catalogue


def default_checkpoint(backend: str, world: str) -> str:
    """The shipped checkpoint of ``backend`` for the world named ``world``."""
    get_backend(backend)  # a ValueError naming the known ones
    shipped = shipped_catalogue()
    if world not in shipped:
        raise ValueError(
            f"no shipped world model of world {world!r}; shipped: {sorted(shipped)}. Pass "
            "checkpoint=DIR (python -m cosmos_env make-world-model makes one)"
        )
    if backend not in shipped[world]:
        raise ValueError(
            f"world {world!r} ships no {backend} model; it ships {sorted(shipped[world])}"
        )
    return shipped[world][backend]


def shipped_world_models(world: str = "tabletop-push") -> list[str]:
    """The shipped checkpoints of ``world``, one per backend that has one."""
    return list(shipped_catalogue().get(world, {}).values())


def _check_pair(directory: Path, meta: dict, tokenizer: Tokenizer) -> None:
    if meta.get("checksum") != tokenizer.checksum or meta.get("name") != tokenizer.cfg.name:
        raise checkpoint.CheckpointError(
            f"dynamics checkpoint {directory} was trained on latents of tokenizer "
            f"{meta.get('name')} with weights {meta.get('checksum')}, but it was paired with "
            f"{tokenizer.cfg.name} with weights {tokenizer.checksum} ({tokenizer.source}). "
            "Pass the tokenizer it was trained with, or retrain the dynamics on latents of "
            "this one"
        )


def _default_tokenizer(meta: dict) -> Tokenizer:
    """The recorded tokenizer (a directory, or a shipped checkpoint's name such as
    ``CI8x8-gym``) if it still exists, else the shipped one of its architecture."""
    source = meta.get("source")
    if source:
        try:
            return load_tokenizer(source)
        except checkpoint.CheckpointError:
            pass  # moved or removed: the pairing check below names what is missing
    return load_tokenizer(meta.get("name", "?"))


def load_world_model(
    name_or_path: str | Path = DEFAULT_WORLD_MODEL, tokenizer: str | Path | Tokenizer | None = None
) -> WorldModel:
    """A shipped world model by name (``diffusion-push``) or a release directory, with
    its tokenizer (by default the one it records; any other must have the same weights);
    every file is checked against the sha256 its config.json records."""
    directory = checkpoint.resolve(name_or_path)
    raw = checkpoint.read_config(directory)
    if is_base(raw):
        raise checkpoint.CheckpointError(
            f"{directory} is a pre-trained base, not a world model of one world: post-train "
            f"it first (python -m cosmos_env post-train base={name_or_path} data=STORE out=DIR)"
        )
    if "dynamics" not in raw or "tokenizer" not in raw:
        raise checkpoint.CheckpointError(
            f"{directory}/config.json has no 'dynamics' section: not a world-model checkpoint"
        )
    kind = raw["dynamics"].get("kind", "diffusion")
    try:
        backend = backend_of_kind(kind)
    except KeyError as e:
        raise checkpoint.CheckpointError(f"{directory}/config.json has {e.args[0]}") from e
    config_class, model_class = backend.load("config"), backend.load("model")
    if "world" not in raw:
        raise checkpoint.CheckpointError(
            f"{directory}/config.json has no 'world' section (the world, its action and state "
            "specs): it was released by an older cosmos-env; retrain it, or add the section"
        )
    try:
        cfg = config_class.from_dict(raw["dynamics"])
        world = WorldInfo.from_dict(raw["world"])
    except (TypeError, ValueError, KeyError) as e:
        raise checkpoint.CheckpointError(f"{directory}/config.json is invalid: {e}") from e
    if tokenizer is None:
        tokenizer = _default_tokenizer(raw["tokenizer"])
    elif not isinstance(tokenizer, Tokenizer):
        tokenizer = load_tokenizer(tokenizer)
    _check_pair(directory, raw["tokenizer"], tokenizer)
    if "base" in raw:  # post-trained: the base's weights, then what post-training changed
        dynamics = rebuild_post_trained(directory, cfg, raw["base"])
    else:
        dynamics = model_class(cfg)
        checkpoint.load_weights(directory, dynamics)
    dynamics.eval().requires_grad_(False)
    resets = _load_resets(directory)
    return WorldModel(
        tokenizer=tokenizer,
        dynamics=dynamics,
        world=world,
        sampler=raw.get("sampler", {}).get("name", "euler"),
        sampler_steps=int(raw.get("sampler", {}).get("steps", 1)),
        reset_frames=resets["frames"],
        reset_states=resets["states"],
        source=directory,
        outcomes=tuple(raw.get("outcomes", ())),
    )


def _load_resets(directory: Path) -> dict[str, np.ndarray]:
    """The release's held-out reset frames and states (``reset_frames.npz``), checked
    against its digest; an unreadable file is a `CheckpointError` naming it."""
    data = checkpoint.read_verified(directory, RESET_FILE)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            resets = {key: npz[key] for key in ("frames", "states")}
    except (ValueError, OSError, KeyError, EOFError) as e:
        raise checkpoint.CheckpointError(
            f"{directory / RESET_FILE} is not a reset-frames archive (frames, states): "
            f"{type(e).__name__}: {e}. Re-download or re-export the checkpoint"
        ) from e
    return resets


def save_world_model(
    directory: str | Path,
    dynamics: LatentDynamics | TokenDynamics,
    tokenizer: Tokenizer,
    world: WorldInfo,
    sampler: str,
    sampler_steps: int,
    reset_frames: np.ndarray,
    reset_states: np.ndarray,
    card: str = "",
    keys: set[str] | None = None,
    weights: str = "float16",
    **extra,
) -> Path:
    """Release ``dynamics`` (parameters in the ``weights`` format of
    `checkpoint.save_release`) paired with ``tokenizer``, atomically; ``extra`` adds keys
    to config.json (``outcomes``: the columns its heads learned;
    ``base``: the base it was post-trained from, whose tensors ``keys`` leaves out)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=reset_frames, states=reset_states)
    config = {
        "dynamics": dynamics.cfg.to_dict(),
        "tokenizer": {
            "name": tokenizer.cfg.name,
            "checksum": tokenizer.checksum,
            "source": checkpoint.portable_source(tokenizer.source),
        },
        "world": world.to_dict(),
        "sampler": {"name": sampler, "steps": sampler_steps},
        **extra,
    }
    return checkpoint.save_release(
        Path(directory),
        dynamics,
        config,
        card,
        files={RESET_FILE: buffer.getvalue()},
        weights=weights,
        keys=keys,
    )


def release_training_run(
    cfg: TrainDynamicsConfig | TrainARConfig,
    dynamics: LatentDynamics | TokenDynamics,
    tokenizer: Tokenizer,
    paths: list[Path],
    card: str,
    metrics: dict[str, float],
    steps: int,
    wall_minutes: float,
    outcomes: tuple[str, ...] = (),
    base: dict | None = None,
    keys: set[str] | None = None,
) -> Path:
    """Release a finished training run (either backend) to ``cfg.out/release``, with
    ``cfg.reset_frames`` held-out first frames of the training stores to reset from; a
    post-trained run records its ``base`` and stores only ``keys``."""
    frames, states = held_out_reset_frames(paths, cfg.reset_frames, cfg.val_fraction, cfg.seed)
    return save_world_model(
        Path(cfg.out) / "release",
        dynamics,
        tokenizer,
        store_world(paths),
        cfg.sampler,
        cfg.sampler_steps,
        frames,
        states,
        card,
        keys,
        metrics=metrics,
        steps=steps,
        wall_minutes=wall_minutes,
        **({"outcomes": list(outcomes)} if outcomes else {}),
        **({"base": base} if base else {}),
    )
