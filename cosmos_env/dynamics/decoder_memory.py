"""What a backend carries from one step of a rollout to the next (the AR model's KV cache),
so that a rollout step need not rebuild it from the context frames."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DecoderMemory:
    """What a backend keeps from one step of a rollout to the next: the AR model's KV cache
    of the context frames (None until its first step, or for a backend that keeps nothing),
    and the rows whose context was replaced since (partial resets), which the backend
    rebuilds before it next decodes."""

    cache: object | None = None
    stale: torch.Tensor | None = None  # (M,) int64 row indices

    def mark_stale(self, rows: torch.Tensor) -> None:
        """Rows ``rows`` (M,) got a new context: their cached part no longer holds."""
        if self.cache is None:
            return  # nothing kept yet: the first step builds every row
        rows = rows.long()
        self.stale = rows if self.stale is None else torch.cat([self.stale, rows]).unique()
