"""A pre-trained base (a world foundation model) and the world models post-trained from it.

The base is a diffusion world model with no actions and no state (``action_dim`` and
``state_dim`` 0), pre-trained on video of many worlds. Post-training builds the target
world's model (its action and state sizes, state track, heads) with the base's network,
copies every base tensor into it, and starts what the base lacks so that the new model
first behaves exactly as the base: the action and state embeddings contribute zero
(`ActionEmbedding.zero_outputs`), and the keypoint-map input channels get zero weights.
With ``adapter_rank`` > 0 the copied linear layers stay frozen and learn low-rank changes
(``dynamics/adapters.py``); the release then stores only the trained tensors and buffers,
and names the base by the checksum of its weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cosmos_env import checkpoint
from cosmos_env.dynamics.adapters import add_adapters, merge_adapters
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics

BASE_KIND = "world-foundation-model"
ADAPTER_TARGETS = ("qkv", "proj", "fc1", "fc2")  # the DiT blocks' attention and MLP layers
# What the base decides for every model post-trained from it.
INHERITED = ("latent_channels", "latent_size", "context", "net", "edm")
# The base's standardisation of latents: the network expects its inputs scaled this way.
LATENT_STATS = ("latent_mean", "latent_std", "delta_std")


class BaseModel:
    """A loaded base: the model, its tokenizer record (name, checksum, source) and the
    checksum of its weights, which post-trained releases name."""

    def __init__(self, model: LatentDynamics, raw: dict[str, Any], directory: Path) -> None:
        self.model, self.raw, self.directory = model, raw, directory
        self.checksum = checkpoint.weights_checksum(directory)

    @property
    def cfg(self) -> DiffusionConfig:
        return self.model.cfg

    @property
    def tokenizer(self) -> dict[str, str]:
        return self.raw["tokenizer"]

    def reference(self) -> dict[str, str]:
        """What a post-trained release records of its base."""
        return {"source": checkpoint.portable_source(self.directory), "checksum": self.checksum}


def is_base(raw: dict[str, Any]) -> bool:
    return raw.get("kind") == BASE_KIND


def save_base(
    directory: Path, model: LatentDynamics, tokenizer: Any, card: str, **extra: Any
) -> Path:
    """Release a pre-trained base atomically: float16 weights, its config, the tokenizer it
    was trained on (name, checksum, source) and ``extra`` (corpus, metrics, steps)."""
    config = {
        "kind": BASE_KIND,
        "dynamics": model.cfg.to_dict(),
        "tokenizer": {
            "name": tokenizer.cfg.name,
            "checksum": tokenizer.checksum,
            "source": checkpoint.portable_source(tokenizer.source),
        },
        **extra,
    }
    return checkpoint.save_release(Path(directory), model, config, card, weights="float16")


def load_base(name_or_path: str | Path) -> BaseModel:
    """A base by shipped name or release directory; anything else is a CheckpointError."""
    directory = checkpoint.resolve(name_or_path)
    raw = checkpoint.read_config(directory)
    if not is_base(raw):
        raise checkpoint.CheckpointError(
            f"{directory} is not a pre-trained base (its config.json has no kind "
            f"{BASE_KIND!r}); make one with `python -m cosmos_env pretrain-base` or name a "
            "shipped base"
        )
    model = LatentDynamics(DiffusionConfig.from_dict(raw["dynamics"]))
    checkpoint.load_weights(directory, model)
    return BaseModel(model.eval().requires_grad_(False), raw, directory)


def inherit_config(target: DiffusionConfig, base: DiffusionConfig) -> None:
    """Give ``target`` the base's network, schedule and latent shape, in place. Data of
    another latent shape (frames of another resolution) cannot be post-trained from it."""
    if (target.latent_channels, target.latent_size) != (base.latent_channels, base.latent_size):
        raise ValueError(
            f"the base was pre-trained on {base.latent_size}x{base.latent_size} latents of "
            f"{base.latent_channels} channels, but this data's latents are "
            f"{target.latent_size}x{target.latent_size} of {target.latent_channels}: "
            "post-train it on frames of the resolution it was pre-trained on"
        )
    for name in INHERITED:
        setattr(target, name, getattr(base, name))


def _embed_columns(cfg: DiffusionConfig) -> list[slice]:
    """The token-embedding input columns of the context frames and of the noisy frame,
    in the order the DiT concatenates its input planes (context, keypoint maps, noisy)."""
    per = cfg.net.patch**2
    context = cfg.context * cfg.latent_channels * per
    maps = cfg.keypoint_channels * per
    return [slice(0, context), slice(context + maps, context + maps + cfg.latent_channels * per)]


def init_from_base(model: LatentDynamics, base: BaseModel) -> set[str]:
    """Copy the base's tensors into ``model`` (same network, `inherit_config`) and start
    what the base lacks as "no effect"; return the state-dict keys that came from the base."""
    own, theirs = model.state_dict(), base.model.state_dict()
    copied: set[str] = set()
    with torch.no_grad():
        for key, value in theirs.items():
            if key in own and own[key].shape == value.shape:
                own[key].copy_(value)
                copied.add(key)
        embed = "denoiser.net.embed.weight"
        if embed not in copied:  # keypoint maps widen the input: zero weights for them
            own[embed].zero_()
            pairs = zip(_embed_columns(model.cfg), _embed_columns(base.cfg), strict=True)
            for mine, base_cols in pairs:
                own[embed][:, mine] = theirs[embed][:, base_cols]
            copied.add(embed)
    for name in LATENT_STATS:
        getattr(model, name).copy_(getattr(base.model, name))
    net = model.denoiser.net
    net.action_embedding.zero_outputs()
    if net.state_embedding is not None:
        net.state_embedding.zero_outputs()
    return copied


def freeze_with_adapters(model: LatentDynamics, copied: set[str], rank: int) -> list[str]:
    """Freeze the base's parameters, add rank-``rank`` adapters to the DiT's attention and
    MLP layers that came from it, and leave trainable only the adapters and the parameters
    the base did not have; return the trainable parameter names."""
    for name, param in model.named_parameters():
        param.requires_grad_(name not in copied)
    # Layers the base lacks (the instruction's cross-attention) train whole.
    from_base = lambda layer: f"denoiser.net.blocks.{layer}.weight" in copied  # noqa: E731
    add_adapters(model.denoiser.net.blocks, rank, ADAPTER_TARGETS, from_base)
    return [name for name, p in model.named_parameters() if p.requires_grad]


def release_keys(model: LatentDynamics) -> set[str]:
    """What a post-trained release stores: the trainable parameters and every buffer
    (the target's state stats and ranges; a few kB)."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return trainable | {name for name, _ in model.named_buffers()}


def rebuild_post_trained(
    directory: Path, cfg: DiffusionConfig, record: dict[str, Any], merge: bool = True
) -> LatentDynamics:
    """The post-trained model of release ``directory``: its base (found by the recorded
    source, checked against the recorded checksum), then the release's tensors on top,
    adapters merged (``merge=False``: left as trained, to be stored again)."""
    try:
        base = load_base(record["source"])
    except checkpoint.CheckpointError as e:
        raise checkpoint.CheckpointError(
            f"{directory} was post-trained from base {record['source']!r}, which cannot be "
            f"loaded: {e}"
        ) from e
    if base.checksum != record["checksum"]:
        raise checkpoint.CheckpointError(
            f"{directory} was post-trained from base {record['source']!r} with weights "
            f"{record['checksum']}, but the installed base has weights {base.checksum}: "
            "install the base it was post-trained from, or post-train it again on this one"
        )
    model = LatentDynamics(cfg)
    copied = init_from_base(model, base)
    rank = int(record.get("adapter_rank", 0))
    if rank:
        freeze_with_adapters(model, copied, rank)
    checkpoint.load_weights(directory, model, partial=True)
    if merge:
        merge_adapters(model)
    return model
