"""``python -m cosmos_env quantize checkpoint=DIR out=DIR2 [weights=int8]``: re-release a
world model or a pre-trained base with its parameters in another storage format
(`checkpoint.WEIGHT_FORMATS`), keeping its tokenizer pairing, world, reset frames and
record; the card says what was done. The predictions change slightly, so a quantized
release is measured as it ships; a base gets a new checksum, so post-train from the
quantized base, not before quantizing it. A post-trained release keeps storing only what
post-training changed (its adapters, unmerged, and the parts the base lacks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from cosmos_env import checkpoint
from cosmos_env.dynamics.diffusion.base import (
    is_base,
    load_base,
    rebuild_post_trained,
    release_keys,
)
from cosmos_env.dynamics.release import load_world_model, save_world_model

# save_world_model writes these itself; everything else in config.json is carried over
REWRITTEN = ("dynamics", "tokenizer", "world", "sampler", checkpoint.DIGESTS, checkpoint.WEIGHTS)


@dataclass
class QuantizeConfig:
    checkpoint: str = "diffusion-push"  # shipped world-model name or release directory
    out: str = "outputs/quantized"  # the new release (may be the same directory)
    weights: str = "int8"  # float32 | float16 | int8


def quantize_release(cfg: QuantizeConfig) -> dict:
    """Write ``cfg.checkpoint`` to ``cfg.out`` with ``cfg.weights`` parameters; return the
    sizes before and after and the largest relative RMS error of a parameter tensor."""
    if cfg.weights not in checkpoint.WEIGHT_FORMATS:
        raise ValueError(
            f"weights={cfg.weights!r}: the formats are {', '.join(checkpoint.WEIGHT_FORMATS)}"
        )
    source = checkpoint.resolve(cfg.checkpoint)
    raw = checkpoint.read_config(source)
    before = raw.get(checkpoint.WEIGHTS, "float16")
    size_before = (source / checkpoint.WEIGHTS_FILE).stat().st_size
    card_path = source / "card.md"
    card = card_path.read_text() + _card_note(cfg, before) if card_path.exists() else ""
    # logs and other files beside the release go along (read first: out may be source)
    others = {p.name: p.read_bytes() for p in source.iterdir() if p.is_file()}
    out = Path(cfg.out)
    if is_base(raw):
        model = load_base(source).model
        record = {k: v for k, v in raw.items() if k not in REWRITTEN[-2:]}
        checkpoint.save_release(out, model, record, card, weights=cfg.weights)
        stored = load_base(out).model
    else:
        world = load_world_model(source)
        model = world.dynamics  # a post-trained one with its adapters merged
        own, keys = model, None
        if "base" in raw:  # store again only what post-training changed, adapters apart
            own = rebuild_post_trained(source, model.cfg, raw["base"], merge=False)
            keys = release_keys(own)
        _save_world_model(out, world, own, raw, card, cfg.weights, keys)
        stored = load_world_model(out, world.tokenizer).dynamics
    for name, data in others.items():
        if not (out / name).exists():
            (out / name).write_bytes(data)
    return {
        "out": str(out),
        "weights": f"{before} -> {cfg.weights}",
        "megabytes": [size_before / 1e6, (out / checkpoint.WEIGHTS_FILE).stat().st_size / 1e6],
        "max_relative_rms_error": _max_relative_error(model, stored),
    }


def _save_world_model(
    out: Path, world, dynamics, raw: dict, card: str, weights: str, keys: set[str] | None
) -> None:
    """``world`` re-released with ``dynamics`` (its ``keys`` only, where given)."""
    record = {k: v for k, v in raw.items() if k not in REWRITTEN}
    save_world_model(
        out,
        dynamics,
        world.tokenizer,
        world.world,
        world.sampler,
        world.sampler_steps,
        world.reset_frames,
        world.reset_states,
        card,
        keys,
        weights=weights,
        **record,
    )


def _max_relative_error(model: torch.nn.Module, stored: torch.nn.Module) -> float:
    """The largest RMS(stored - original) / RMS(original) over the parameter tensors."""
    stored = stored.state_dict()
    worst = 0.0
    for name, value in model.named_parameters():
        scale = value.float().pow(2).mean().sqrt()
        if scale > 0:
            error = (stored[name].float() - value.float()).pow(2).mean().sqrt() / scale
            worst = max(worst, float(error))
    return worst


def _card_note(cfg: QuantizeConfig, before: str) -> str:
    return (
        f"\n## Weights: {cfg.weights}\n\n"
        f"Re-released from {before} weights by `python -m cosmos_env quantize "
        f"checkpoint={checkpoint.portable_source(checkpoint.resolve(cfg.checkpoint))} "
        f"weights={cfg.weights}` (`checkpoint.save_release` says how each format stores a "
        "parameter). Figures above were measured on the earlier weights unless they say "
        "otherwise: re-run the benchmarks that quote them.\n"
    )
