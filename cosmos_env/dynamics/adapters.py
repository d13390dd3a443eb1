"""Low-rank adapters (LoRA, Hu et al. 2021) for post-training a pre-trained base.

Post-training freezes the base's linear layers and learns a low-rank change to each,
``W + (alpha / r) * B @ A``, with ``B`` zero at the start, so that the adapted model starts
as the base. A post-trained release then stores only the adapters and what post-training
added (the action embedding, the state track, the heads), beside the base's checksum;
loading rebuilds the model from the base and merges the adapters into its weights
(`merge_adapters`), so inference pays nothing for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + scale * x @ A.T @ B.T``: x (..., in) -> (..., out). ``base`` is frozen;
    ``lora_a`` (r, in) starts random, ``lora_b`` (out, r) at zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"adapter rank must be >= 1, got {rank}")
        self.base = base.requires_grad_(False)
        self.scale = (alpha if alpha is not None else rank) / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = (x @ self.lora_a.t().to(x.dtype)) @ self.lora_b.t().to(x.dtype)
        return self.base(x) + self.scale * low_rank

    def merged(self) -> nn.Linear:
        """A plain Linear with the adapter folded into its weight."""
        layer = self.base
        with torch.no_grad():
            layer.weight += self.scale * (self.lora_b @ self.lora_a).to(layer.weight.dtype)
        return layer


def add_adapters(
    model: nn.Module,
    rank: int,
    targets: tuple[str, ...],
    only: Callable[[str], bool] = lambda name: True,
) -> list[str]:
    """Replace every ``nn.Linear`` child whose attribute name is in ``targets`` (e.g.
    ``qkv``, ``proj``, ``fc1``, ``fc2``) and whose qualified name (``blocks.0.attn.qkv``)
    ``only`` accepts by a `LoRALinear` of ``rank``, in place; return the adapted layers'
    names."""
    adapted = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            qualified = f"{parent_name}.{name}" if parent_name else name
            if name in targets and isinstance(child, nn.Linear) and only(qualified):
                setattr(parent, name, LoRALinear(child, rank))
                adapted.append(qualified)
    if not adapted:
        raise ValueError(f"no linear layer named any of {list(targets)} to adapt")
    return adapted


def merge_adapters(model: nn.Module) -> int:
    """Fold every `LoRALinear` in ``model`` back into a plain Linear; return how many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                count += 1
    return count
