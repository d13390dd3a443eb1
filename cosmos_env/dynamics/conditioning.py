"""What the frame generator is told besides the past frames, as one typed object: the
actions (with the guidance mask that drops them), the task states and their keypoint
maps, and the instruction's text tokens. A new kind of conditioning is a new field here,
not a new argument on every network, denoiser and sampler between the env and the DiT."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch


@dataclass(frozen=True)
class Conditioning:
    """One batch's conditioning; every tensor is batched along dim 0 (B).

    - ``actions`` (B, K, A) in [-1, 1]: the action after each context frame, the last one
      leads to the frame being generated;
    - ``action_mask`` (B,) bool or None: False drops that row's actions (guidance);
    - ``states`` (B, K+1, S) standardised task states of the context frames and of the
      frame being generated (state-track models);
    - ``maps`` (B, M, h, w) keypoint maps of those states (keypoint models);
    - ``text`` (B, L, D) text tokens of the instruction and ``text_mask`` (B, L) bool,
      True on real tokens (instruction models).
    """

    actions: torch.Tensor
    action_mask: torch.Tensor | None = None
    states: torch.Tensor | None = None
    maps: torch.Tensor | None = None
    text: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None

    def with_(self, **changes) -> Conditioning:
        """A copy with ``changes`` applied (e.g. the actions dropped for guidance)."""
        return replace(self, **changes)


class TextIds(NamedTuple):
    """An instruction batch as token ids (B, L) int64 and validity mask (B, L) bool
    (``TextConditioner.token_ids`` makes them from texts, through the pre-guard)."""

    ids: torch.Tensor
    mask: torch.Tensor
