"""A Llama-style causal transformer over discrete FSQ tokens, conditioned on actions, with
a KV cache for frame-by-frame decoding and a MaskGIT-style parallel mode.

Sequence: ``[f0, a0, f1, a1, ..., fK]``, each frame ``N = latent_size**2`` tokens in
raster order, each action ``a_t`` one token (an MLP of the action taken after frame t).
The model is factorised over the token's FSQ digits: a token's embedding is the sum of one
embedding per digit and the output is one softmax head per digit, so the parameter count
does not grow with the 64000-token vocabulary.

State-track models add each frame's state to its inputs (`StateConditioning`).

Positions: 3-axis RoPE over (time, row, column) plus a learned embedding of the
within-frame slot (N grid slots + 1 for the action). The action token ``a_t`` sits at
``(t + 1, -1, -1)``: it is the "begin-of-frame" token of frame t + 1 (the frame it leads
to, and whose block it joins in the parallel mode), placed before the frame's first row
and column, so that reading order is the lexicographic order of (time, row, column).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cosmos_env.dynamics.autoregressive.conditioning import StateConditioning
from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.autoregressive.decoding import FrameDecoding
from cosmos_env.dynamics.autoregressive.kv_cache import KVCache
from cosmos_env.dynamics.autoregressive.layers import Block, Rotary, digits
from cosmos_env.dynamics.autoregressive.losses import token_losses
from cosmos_env.dynamics.autoregressive.masking import training_mask
from cosmos_env.dynamics.norms import RMSNorm


class ARTransformer(FrameDecoding, nn.Module):
    """Action-conditioned transformer over FSQ token frames (see the module docstring).

    Tokens are int64 (B, F, N) in [0, prod(levels)), N = latent_size**2 in raster order;
    actions float (B, F-1, A) in [-1, 1], ``actions[:, t]`` taken after frame t. Logits
    come as a list with one (..., levels[i]) tensor per digit. Decoding (prefill, token
    by token, MaskGIT) is `FrameDecoding`'s.
    """

    def __init__(self, cfg: ARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, n, s = cfg.width, cfg.tokens_per_frame, cfg.latent_size
        offsets = torch.cumsum(torch.tensor([0] + cfg.levels[:-1]), 0)
        self.register_buffer("digit_offsets", offsets, persistent=False)  # (L,)
        grid = torch.stack(torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij"), -1)
        self.register_buffer("grid", grid.view(n, 2), persistent=False)  # (N, 2) row, col
        self.digit_embedding = nn.Embedding(sum(cfg.levels), d)  # the L digit tables, stacked
        self.slot_embedding = nn.Embedding(n + 1, d)  # within-frame slot; slot N: action
        self.mask_embedding = nn.Parameter(torch.zeros(d))  # [MASK] (parallel mode)
        self.action_embedding = nn.Sequential(
            nn.Linear(cfg.action_dim, d), nn.SiLU(), nn.Linear(d, d)
        )
        self.conditioning = None
        if cfg.state_track is not None:
            self.conditioning = StateConditioning(cfg.state_dim, cfg.keypoints_per_frame, d, n)
        self.rotary = Rotary(d // cfg.heads, cfg.rope_base)
        hidden = round(d * cfg.mlp_ratio)
        text_width = cfg.text.encoder.width if cfg.text is not None else 0
        self.blocks = nn.ModuleList(
            Block(d, cfg.heads, hidden, text_width) for _ in range(cfg.depth)
        )
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, sum(cfg.levels), bias=False)  # the L digit heads, stacked
        self.apply(self._init_weights)
        nn.init.normal_(self.mask_embedding, std=0.02)
        for block in self.blocks:  # GPT-2: residual branches scaled down with depth
            for layer in (block.attn.proj, block.mlp.down):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * cfg.depth))
            if block.cross is not None:  # zero: a base that gains text predicts as before
                nn.init.zeros_(block.cross.proj.weight)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # ----- inputs and layout -------------------------------------------------------------

    def _token_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token indices (...) -> (..., D): the sum of the token's digit embeddings."""
        return self.digit_embedding(digits(tokens, self.cfg.levels) + self.digit_offsets).sum(-2)

    def _action_features(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions (..., A) -> (..., D)."""
        return self.action_embedding(actions.to(self.mask_embedding.dtype))

    def frame_conditioning(
        self, states: torch.Tensor, maps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-input conditioning (B, F, N+1, D) of F frames (`StateConditioning`):
        standardised states (B, F, S), keypoint maps (B, F, P, h, w) for keypoint models."""
        if self.conditioning is None:
            raise ValueError("this model has no state track (dynamics.state_track=null)")
        return self.conditioning(states.to(self.mask_embedding.dtype), maps)

    def _check_conditioning(self, cond: torch.Tensor | None, frames: int, batch: int) -> None:
        if (cond is None) != (self.conditioning is None):
            need = "pass the frames' conditioning (frame_conditioning)" if cond is None else ""
            raise ValueError(
                need or "this model has no state track: it takes no frame conditioning"
            )
        n, d = self.cfg.tokens_per_frame, self.cfg.width
        if cond is not None and tuple(cond.shape) != (batch, frames, n + 1, d):
            raise ValueError(
                f"frame conditioning must be (B, F, N+1, D) = {(batch, frames, n + 1, d)}, "
                f"got {tuple(cond.shape)}"
            )

    def _frame_positions(self, time: int, action: bool = True) -> torch.Tensor:
        """Positions (N [+1], 3) of frame ``time``, led by its action token at (time, -1, -1)."""
        grid = self.grid
        if action:
            grid = torch.cat([grid.new_full((1, 2), -1), grid])
        return torch.cat([grid.new_full((len(grid), 1), time), grid], 1)

    def _positions(self, frames: int, start_time: int = 0) -> torch.Tensor:
        """Positions (F*N + F-1, 3) of the sequence [f0, a0, f1, ..., f_{F-1}]."""
        parts = [self._frame_positions(start_time + t, action=t > 0) for t in range(frames)]
        return torch.cat(parts)

    def _slots(self, pos: torch.Tensor) -> torch.Tensor:
        """Within-frame slot (n,) of positions (n, 3): row * side + col, N for actions."""
        side = self.cfg.latent_size
        return torch.where(pos[:, 1] < 0, side * side, pos[:, 1] * side + pos[:, 2])

    def _embed_sequence(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        masked: torch.Tensor | None = None,
        start_time: int = 0,
        cond: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, L, D) and positions (L, 3) of [f0, a0, ..., f_{F-1}], L = F*N + F-1;
        ``masked`` (B, N) bool replaces those tokens of the last frame by [MASK]; ``cond``
        (B, F, N+1, D) is the frames' conditioning (`frame_conditioning`)."""
        self._check_conditioning(cond, tokens.shape[1], tokens.shape[0])
        frames = self._token_features(tokens)  # (B, F, N, D)
        if masked is not None:
            last = torch.where(masked[..., None], self.mask_embedding, frames[:, -1])
            frames = torch.cat([frames[:, :-1], last[:, None]], 1)
        acts = self._action_features(actions)[:, :, None]  # (B, F-1, 1, D)
        if cond is not None:
            frames = frames + cond[:, :, 1:]
            acts = acts + cond[:, 1:, :1]  # a_t leads to frame t+1
        blocks = torch.cat([acts, frames[:, 1:]], 2).flatten(1, 2)  # (B, (F-1)(N+1), D)
        x = torch.cat([frames[:, 0], blocks], 1)  # (B, L, D)
        pos = self._positions(tokens.shape[1], start_time)
        return x + self.slot_embedding(self._slots(pos)), pos

    def _check_inputs(self, tokens: torch.Tensor, actions: torch.Tensor, min_frames: int) -> None:
        n, a = self.cfg.tokens_per_frame, self.cfg.action_dim
        if tokens.dim() != 3 or tokens.shape[2] != n or tokens.shape[1] < min_frames:
            raise ValueError(f"tokens must be (B, F>={min_frames}, {n}), got {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"tokens must be integer indices, got {tokens.dtype}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.vocab_size:
            raise ValueError(f"token indices must lie in [0, {self.cfg.vocab_size})")
        b, f = tokens.shape[:2]
        if tuple(actions.shape) != (b, f - 1, a):
            raise ValueError(
                f"actions must be (B, F-1, A) = {(b, f - 1, a)}, got {tuple(actions.shape)}"
            )

    # ----- the network -------------------------------------------------------------------

    def _run(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        cache: KVCache | None = None,
        append: bool = False,
        block: bool = False,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, n, D) of new inputs x (B, n, D) at positions pos (n, 3).

        They attend to every cached token and, among themselves, causally (``block``
        False) or block-causally (``block`` True: to every token of their own or an earlier
        time index). ``append`` adds their keys and values to the cache. Instruction
        models read ``text`` (tokens (B, L, D), mask (B, L)), or the cache's.
        """
        if text is None and cache is not None:
            text = cache.text
        n, m = x.shape[1], len(cache) if cache is not None else 0
        mask, causal = None, False
        if n > 1:
            if block:
                own = pos[None, :, 0] <= pos[:, None, 0]  # (n, n)
                if bool(own.all()):  # one frame's block sees everything: no mask to apply
                    own = None
            elif m == 0:
                own, causal = None, True
            else:
                own = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
            if own is not None:
                mask = torch.cat([own.new_ones(n, m), own], 1)  # (n, m + n)
        rope = self.rotary(pos)
        for i, layer in enumerate(self.blocks):
            past = None if cache is None or m == 0 else (cache.keys[i], cache.values[i])
            x, k, v = layer(x, rope, past, mask, causal, text)  # k, v: past's, then x's
            if append:
                cache.keys[i], cache.values[i] = k, v
        return x

    def _logits(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Hidden (..., D) -> one logits tensor (..., levels[i]) per digit."""
        return list(self.head(self.norm(h)).split(self.cfg.levels, dim=-1))

    def forward(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Teacher-forced logits of frames 1..F-1: per digit (B, F-1, N, levels[i]).

        tokens (B, F, N) int64, actions (B, F-1, A), state-track models' conditioning
        ``cond`` (B, F, N+1, D), instruction models' ``text`` (tokens (B, L, Dt), mask
        (B, L)); frame t token j is predicted from everything before it (the action token
        a_{t-1} predicts token 0).
        """
        self._check_inputs(tokens, actions, min_frames=2)
        b, f, n = tokens.shape
        x, pos = self._embed_sequence(tokens, actions, cond=cond)
        h = self._run(x, pos, text=text)  # (B, L, D)
        # Blocks [a_{t-1}, f_t] for t >= 1; their first N inputs predict f_t[0..N-1].
        h = h[:, n:].reshape(b, f - 1, n + 1, -1)[:, :, :n]  # (B, F-1, N, D)
        return self._logits(h)

    def forward_parallel(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        masked: torch.Tensor,
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Parallel-mode logits of the last frame, per digit (B, N, levels[i]), each token
        predicted at its own position; its ``masked`` (B, N) bool tokens are replaced by
        [MASK]. The mask is block-causal: a token sees all earlier frames and its whole
        frame (with the action token that leads to it)."""
        self._check_inputs(tokens, actions, min_frames=2)
        x, pos = self._embed_sequence(tokens, actions, masked, cond=cond)
        h = self._run(x, pos, block=True, text=text)
        return self._logits(h[:, -self.cfg.tokens_per_frame :])

    # ----- losses ------------------------------------------------------------------------

    def loss(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced losses over every frame after the first (each frame t >= 1 is
        predicted from frames < t, so one window trains all context lengths 1..F-1).

        Returns `losses.token_losses`' ``loss``, ``ce``, ``z_loss`` and ``accuracy``.
        """
        cfg = self.cfg
        logits = self.forward(tokens, actions, cond, text)
        return token_losses(logits, tokens[:, 1:], cfg.levels, cfg.z_loss)

    def loss_parallel(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Parallel-mode (MaskGIT) losses, same keys as ``loss``, over the masked tokens of
        the last frame, hidden by `masking.training_mask` (the cosine schedule)."""
        cfg = self.cfg
        masked = training_mask(  # (B, N)
            tokens.shape[0],
            cfg.tokens_per_frame,
            cfg.mask_prob_min,
            cfg.mask_prob_max,
            generator,
            tokens.device,
        )
        logits = self.forward_parallel(tokens, actions, masked, cond, text)
        return token_losses(logits, tokens[:, -1], cfg.levels, cfg.z_loss, masked)
