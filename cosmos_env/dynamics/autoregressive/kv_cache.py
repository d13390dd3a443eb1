"""The KV cache of the autoregressive transformer: every layer's keys and values for the
tokens seen so far, with the sliding-window and per-row bookkeeping the decoders need."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    """Keys and values (B, H, n, Dh) of every layer for the tokens seen so far (rotated by
    RoPE at their absolute positions, so dropping the oldest ones keeps the rest valid).

    ``next_time`` is the time index of the next frame; ``mode`` is ``"causal"`` (built by
    the autoregressive mode) or ``"block"`` (parallel mode: each frame's tokens see the
    whole frame), and the decoders check it. All batch rows have the same length: to reset
    some rows, prefill their new context to the same length (e.g. the first frame repeated
    ``context`` times, with ``start_time=cache.next_time - context``) and ``set_rows``.

    Instruction models keep each row's text tokens (B, L, D) and mask (B, L) here, read by
    every decoding step; ``guidance`` (classifier-free, on the text and actions) means the
    cache holds 2B rows: the conditioned ones, then the same rows unconditioned.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    next_time: int = 0
    mode: str = "causal"
    text: tuple[torch.Tensor, torch.Tensor] | None = None
    guidance: float | None = None

    def __len__(self) -> int:
        return self.keys[0].shape[2]

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    def crop_front(self, n: int) -> None:
        """Drop the n oldest tokens of every layer (a sliding window)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"cannot crop {n} tokens from a cache of {len(self)}")
        self.keys = [k[:, :, n:] for k in self.keys]
        self.values = [v[:, :, n:] for v in self.values]

    def index_select(self, rows: torch.Tensor) -> KVCache:
        """A new cache holding batch rows ``rows`` (long indices or a bool mask), copied."""
        text = None if self.text is None else (self.text[0][rows], self.text[1][rows])
        keys, values = [k[rows] for k in self.keys], [v[rows] for v in self.values]
        return KVCache(keys, values, self.next_time, self.mode, text, self.guidance)

    def set_rows(self, rows: torch.Tensor, other: KVCache) -> None:
        """Overwrite batch rows ``rows`` with ``other``'s rows, in place. ``other`` must
        have the same length, next time index and mode (prefill it with ``start_time``)."""
        if (len(other), other.next_time, other.mode) != (len(self), self.next_time, self.mode):
            raise ValueError(
                f"cache rows must match: length {len(other)} vs {len(self)}, next_time "
                f"{other.next_time} vs {self.next_time}, mode {other.mode} vs {self.mode}; "
                "prefill the new rows with as many frames and start_time=next_time - frames"
            )
        for i in range(len(self.keys)):
            self.keys[i][rows] = other.keys[i]
            self.values[i][rows] = other.values[i]
        if self.text is not None:
            if other.text is None or other.text[0].shape[1:] != self.text[0].shape[1:]:
                raise ValueError("the new rows need text tokens of the cache's shape (B, L, D)")
            self.text[0][rows], self.text[1][rows] = other.text
