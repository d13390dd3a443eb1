"""A Llama-style causal transformer over discrete FSQ tokens, conditioned on actions, with
a KV cache for frame-by-frame decoding and a MaskGIT-style parallel mode.

Sequence: ``[f0, a0, f1, a1, ..., fK]``, each frame ``N = latent_size**2`` tokens in
raster order, each action ``a_t`` one token (an MLP of the action taken after frame t).
The model is factorised over the token's FSQ digits: a token's embedding is the sum of one
embedding per digit and the output is one softmax head per digit, so the parameter count
does not grow with the 64000-token vocabulary.

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

from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.autoregressive.kv_cache import KVCache
from cosmos_env.dynamics.autoregressive.layers import Block, Rotary, digits, indices
from cosmos_env.dynamics.autoregressive.losses import token_losses
from cosmos_env.dynamics.autoregressive.masking import remask, training_mask
from cosmos_env.dynamics.autoregressive.sampling import sample_logits
from cosmos_env.dynamics.diffusion.network import RMSNorm


class ARTransformer(nn.Module):
    """Action-conditioned transformer over FSQ token frames (see the module docstring).

    Tokens are int64 (B, F, N) in [0, prod(levels)), N = latent_size**2 in raster order;
    actions float (B, F-1, A) in [-1, 1], ``actions[:, t]`` taken after frame t. Logits
    come as a list with one (..., levels[i]) tensor per digit.
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
        self.rotary = Rotary(d // cfg.heads, cfg.rope_base)
        hidden = round(d * cfg.mlp_ratio)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, hidden) for _ in range(cfg.depth))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, sum(cfg.levels), bias=False)  # the L digit heads, stacked
        self.apply(self._init_weights)
        nn.init.normal_(self.mask_embedding, std=0.02)
        for block in self.blocks:  # GPT-2: residual branches scaled down with depth
            for layer in (block.attn.proj, block.mlp.down):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * cfg.depth))

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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, L, D) and positions (L, 3) of [f0, a0, ..., f_{F-1}], L = F*N + F-1;
        ``masked`` (B, N) bool replaces those tokens of the last frame by [MASK]."""
        frames = self._token_features(tokens)  # (B, F, N, D)
        if masked is not None:
            last = torch.where(masked[..., None], self.mask_embedding, frames[:, -1])
            frames = torch.cat([frames[:, :-1], last[:, None]], 1)
        acts = self._action_features(actions)[:, :, None]  # (B, F-1, 1, D)
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
    ) -> torch.Tensor:
        """Hidden states (B, n, D) of new inputs x (B, n, D) at positions pos (n, 3).

        They attend to every cached token and, among themselves, causally (``block``
        False) or block-causally (``block`` True: to every token of their own or an earlier
        time index). ``append`` adds their keys and values to the cache.
        """
        n, m = x.shape[1], len(cache) if cache is not None else 0
        mask, causal = None, False
        if n > 1:
            if block:
                own = pos[None, :, 0] <= pos[:, None, 0]  # (n, n)
            elif m == 0:
                own, causal = None, True
            else:
                own = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
            if own is not None:
                mask = torch.cat([own.new_ones(n, m), own], 1)  # (n, m + n)
        rope = self.rotary(pos)
        for i, layer in enumerate(self.blocks):
            past = None if cache is None or m == 0 else (cache.keys[i], cache.values[i])
            x, k, v = layer(x, rope, past, mask, causal)
            if append:
                cache.append(i, k, v)
        return x

    def _logits(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Hidden (..., D) -> one logits tensor (..., levels[i]) per digit."""
        return list(self.head(self.norm(h)).split(self.cfg.levels, dim=-1))

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
        """Teacher-forced logits of frames 1..F-1: per digit (B, F-1, N, levels[i]).

        tokens (B, F, N) int64, actions (B, F-1, A); frame t token j is predicted from
        everything before it (the action token a_{t-1} predicts token 0).
        """
        self._check_inputs(tokens, actions, min_frames=2)
        b, f, n = tokens.shape
        x, pos = self._embed_sequence(tokens, actions)
        h = self._run(x, pos)  # (B, L, D)
        # Blocks [a_{t-1}, f_t] for t >= 1; their first N inputs predict f_t[0..N-1].
        h = h[:, n:].reshape(b, f - 1, n + 1, -1)[:, :, :n]  # (B, F-1, N, D)
        return self._logits(h)

    def forward_parallel(
        self, tokens: torch.Tensor, actions: torch.Tensor, masked: torch.Tensor
    ) -> list[torch.Tensor]:
        """Parallel-mode logits of the last frame, per digit (B, N, levels[i]), each token
        predicted at its own position; its ``masked`` (B, N) bool tokens are replaced by
        [MASK]. The mask is block-causal: a token sees all earlier frames and its whole
        frame (with the action token that leads to it)."""
        self._check_inputs(tokens, actions, min_frames=2)
        x, pos = self._embed_sequence(tokens, actions, masked)
        h = self._run(x, pos, block=True)
        return self._logits(h[:, -self.cfg.tokens_per_frame :])

    # ----- losses ------------------------------------------------------------------------

    def loss(self, tokens: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced losses over every frame after the first (each frame t >= 1 is
        predicted from frames < t, so one window trains all context lengths 1..F-1).

        Returns `losses.token_losses`' ``loss``, ``ce``, ``z_loss`` and ``accuracy``.
        """
        cfg = self.cfg
        return token_losses(self.forward(tokens, actions), tokens[:, 1:], cfg.levels, cfg.z_loss)

    def loss_parallel(
        self, tokens: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
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
        logits = self.forward_parallel(tokens, actions, masked)
        return token_losses(logits, tokens[:, -1], cfg.levels, cfg.z_loss, masked)

    # ----- decoding ----------------------------------------------------------------------

    def _sample_tokens(
        self, logits: list[torch.Tensor], generator: torch.Generator | None, **kw
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-digit logits (..., levels[i]) -> sampled tokens (...) and their digits
        (..., L); each digit drawn independently with ``sample_logits``."""
        d = torch.stack([sample_logits(lg, generator, **kw) for lg in logits], -1)
        return indices(d, self.cfg.levels), d

    def _end_frame(self, cache: KVCache) -> None:
        """After a frame is in the cache: advance time, keep only the last K frames."""
        cache.next_time += 1
        stride = self.cfg.tokens_per_frame + 1
        frames = (len(cache) + 1) // stride
        if frames > self.cfg.context:
            cache.crop_front((frames - self.cfg.context) * stride)

    def _check_cache(self, cache: KVCache, mode: str, action: torch.Tensor) -> None:
        if cache.mode != mode:
            raise ValueError(
                f"this decoder needs a {mode!r} cache, got {cache.mode!r}: "
                f"prefill with parallel={mode == 'block'}"
            )
        if tuple(action.shape) != (cache.batch_size, self.cfg.action_dim):
            raise ValueError(
                f"action must be (B, A) = {(cache.batch_size, self.cfg.action_dim)}"
                f", got {tuple(action.shape)}"
            )

    @torch.no_grad()
    def prefill(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        start_time: int = 0,
        parallel: bool = False,
    ) -> KVCache:
        """A cache of k <= context frames (B, k, N) and the k-1 actions (B, k-1, A) between
        them, frame i at time ``start_time + i``. ``parallel`` builds it with the
        block-causal mask, for ``decode_frame_parallel``."""
        self._check_inputs(tokens, actions, min_frames=1)
        if tokens.shape[1] > self.cfg.context:
            raise ValueError(
                f"prefill takes at most context={self.cfg.context} frames, got "
                f"{tokens.shape[1]}; pass the last ones"
            )
        b, (h, dh) = tokens.shape[0], (self.cfg.heads, self.cfg.width // self.cfg.heads)
        empty = self.mask_embedding.new_zeros(b, h, 0, dh)
        depth = self.cfg.depth
        cache = KVCache([empty] * depth, [empty] * depth, mode="block" if parallel else "causal")
        x, pos = self._embed_sequence(tokens, actions, start_time=start_time)
        self._run(x, pos, cache, append=True, block=parallel)
        cache.next_time = start_time + tokens.shape[1]
        return cache

    @torch.no_grad()
    def decode_frame(
        self,
        cache: KVCache,
        action: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> torch.Tensor:
        """Next frame's tokens (B, N) after ``action`` (B, A), one token at a time.

        Feeds the action token, then each sampled token, one per step through the (causal)
        cache; the finished frame stays in the cache, which then keeps the last ``context``
        frames (the oldest frame's keys still carry what it saw of older frames, as in
        Transformer-XL). Randomness only from ``generator``.
        """
        self._check_cache(cache, "causal", action)
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        n = self.cfg.tokens_per_frame
        pos = self._frame_positions(cache.next_time)  # (N+1, 3): action, then the grid
        slots = self.slot_embedding(self._slots(pos))  # (N+1, D)
        x = self._action_features(action)[:, None] + slots[0]  # (B, 1, D)
        out = torch.empty(cache.batch_size, n, dtype=torch.long, device=action.device)
        for j in range(n + 1):
            h = self._run(x, pos[j : j + 1], cache, append=True)  # (B, 1, D)
            if j == n:  # the last token only had to enter the cache
                break
            out[:, j : j + 1] = self._sample_tokens(self._logits(h), generator, **kw)[0]
            x = self._token_features(out[:, j : j + 1]) + slots[j + 1]
        self._end_frame(cache)
        return out

    @torch.no_grad()
    def decode_frame_nocache(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> torch.Tensor:
        """Reference for ``decode_frame``: the next frame (B, N) after context ``tokens``
        (B, k, N) and ``actions`` (B, k, A) (the last one leads to the new frame),
        recomputing the whole sequence for every token. Same draws from ``generator``."""
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        b, _, n = tokens.shape
        out = torch.zeros(b, 1, n, dtype=torch.long, device=tokens.device)
        for j in range(n):  # positions > j are placeholders the causal mask hides
            logits = self.forward(torch.cat([tokens, out], 1), actions)
            out[:, 0, j] = self._sample_tokens([lg[:, -1, j] for lg in logits], generator, **kw)[0]
        return out[:, 0]

    def _frame_block(
        self, action: torch.Tensor, tokens: torch.Tensor, masked: torch.Tensor | None, time: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, N+1, D) and positions (N+1, 3) of [a, frame] at ``time``, the
        ``masked`` (B, N) tokens replaced by [MASK]."""
        frame = self._token_features(tokens)  # (B, N, D)
        if masked is not None:
            frame = torch.where(masked[..., None], self.mask_embedding, frame)
        x = torch.cat([self._action_features(action)[:, None], frame], 1)
        pos = self._frame_positions(time)
        return x + self.slot_embedding(self._slots(pos)), pos

    @torch.no_grad()
    def predict_masked(
        self, cache: KVCache, action: torch.Tensor, tokens: torch.Tensor, masked: torch.Tensor
    ) -> list[torch.Tensor]:
        """Parallel-mode logits, per digit (B, N, levels[i]), of the frame after ``action``
        (B, A) given a block cache, its tokens (B, N) with ``masked`` (B, N) ones hidden.
        The frame's N+1 inputs attend to the cache and to each other; nothing is cached."""
        self._check_cache(cache, "block", action)
        x, pos = self._frame_block(action, tokens, masked, cache.next_time)
        return self._logits(self._run(x, pos, cache, block=True)[:, 1:])

    @torch.no_grad()
    def decode_frame_parallel(
        self,
        cache: KVCache,
        action: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int = 8,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        choice_temperature: float = 0.0,
    ) -> torch.Tensor:
        """Next frame's tokens (B, N) after ``action`` (B, A) in ``steps`` MaskGIT passes.

        Starts all-masked; each pass samples every masked token (``predict_masked``: the
        frame's N+1 inputs against the cached context, recomputed each pass), keeps the
        most confident (sum of the digits' log-probabilities, plus Gumbel noise scaled by
        ``choice_temperature * (1 - progress)``) and re-masks the other
        ``floor(N * cos(pi/2 * (s+1)/steps))``. A last pass puts the finished frame in the
        cache (``cache`` must come from ``prefill(..., parallel=True)``).
        """
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        b, n = cache.batch_size, self.cfg.tokens_per_frame
        tokens = torch.zeros(b, n, dtype=torch.long, device=action.device)
        masked = torch.ones(b, n, dtype=torch.bool, device=action.device)
        for s in range(steps):
            logits = self.predict_masked(cache, action, tokens, masked)
            sampled, d = self._sample_tokens(logits, generator, **kw)  # (B, N), (B, N, L)
            conf = sum(
                lg.float().log_softmax(-1).gather(-1, d[..., i : i + 1])[..., 0]
                for i, lg in enumerate(logits)
            )  # (B, N)
            tokens = torch.where(masked, sampled, tokens)
            masked = remask(conf, masked, s, steps, choice_temperature, generator)
        x, pos = self._frame_block(action, tokens, None, cache.next_time)
        self._run(x, pos, cache, append=True, block=True)
        self._end_frame(cache)
        return tokens
