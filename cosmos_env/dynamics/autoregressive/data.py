"""Training windows for the autoregressive world model: F = K+1 consecutive token frames
from a discrete tokenizer's cache, the K actions between them and the F frames' states.

The anchor convention is ``WindowBatcher``'s: K context rows t-K+1..t (rows before the
episode's start repeat its first frame with zero actions, as the env pads a reset) and the
target row t+1. The AR model reads the window as one sequence and learns every frame after
the first, so one window also trains the shorter contexts inside it.
"""

from __future__ import annotations

import numpy as np
import torch

from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher, window_rows


class TokenWindowBatcher(WindowBatcher):
    """Random batches of (tokens, actions, states) windows over ``episodes`` whose
    ``latents`` are token indices (N, h, w); sampling (``sample``, uniform with an
    ``early_fraction`` of episode starts) is ``WindowBatcher``'s."""

    def __init__(self, episodes: LatentEpisodes, context: int) -> None:
        if not np.issubdtype(episodes.latents.dtype, np.integer) or episodes.latents.ndim != 3:
            raise ValueError(
                f"the autoregressive model trains on token indices (N, h, w) of a discrete "
                f"tokenizer, got {episodes.latents.dtype} {episodes.latents.shape[1:]}; "
                "train with a discrete tokenizer (tokenizer=DI8x8) and encode its tokens"
            )
        super().__init__(episodes, context)

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Windows anchored at ``anchor_rows[indices]`` (B,): ``tokens`` (B, F, h, w) int64,
        ``actions`` (B, F-1, A) float32 (zero on padding rows), ``states`` (B, F, S)
        float32 (padding rows repeat the first frame's), and ``text`` (their episodes'
        instruction ids) for an instruction model's batcher."""
        ep = self.episodes
        t, starts = self.anchor_rows[indices], self.anchor_starts[indices]
        rows, valid = window_rows(t, starts, self.context)  # (B, K)
        frames = np.concatenate([rows, t[:, None] + 1], axis=1)  # (B, F)
        return {
            "tokens": torch.from_numpy(ep.latents[frames].astype(np.int64)),
            "actions": torch.from_numpy(ep.actions[rows] * valid[..., None]),
            "states": torch.from_numpy(ep.states[frames]),
            **self._text(indices),
        }

    def sample_unrolled(self, batch_size: int, rng: np.random.Generator) -> dict:
        raise NotImplementedError("unrolled windows are a diffusion-training feature")
