"""Decoding a frame with the autoregressive transformer: a KV cache of the context
(``prefill``), then the next frame token by token (``decode_frame``, with an uncached
reference) or in MaskGIT passes (``decode_frame_parallel``). A mixin of `ARTransformer`,
whose embedding, network and heads (``_token_features``, ``_run``, ``_logits``, ...) it
drives; state-track models pass each frame's conditioning (``cond``) along.
"""

from __future__ import annotations

import torch

from cosmos_env.dynamics.autoregressive.kv_cache import KVCache
from cosmos_env.dynamics.autoregressive.layers import indices
from cosmos_env.dynamics.autoregressive.masking import remask
from cosmos_env.dynamics.autoregressive.sampling import sample_logits


class FrameDecoding:
    """The decoders of `ARTransformer` (see the module docstring)."""

    def _sample_tokens(
        self, logits: list[torch.Tensor], generator: torch.Generator | None, **kw
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-digit logits (..., levels[i]) -> sampled tokens (...) and their digits
        (..., L); each digit drawn independently with ``sample_logits``."""
        d = torch.stack([sample_logits(lg, generator, **kw) for lg in logits], -1)
        return indices(d, self.cfg.levels), d

    @staticmethod
    def _guided(logits: list[torch.Tensor], cache: KVCache) -> list[torch.Tensor]:
        """Per-digit logits of a guided cache's 2B rows -> B rows: classifier-free guidance,
        u + g * (c - u) on log-probabilities (c: the first B rows, u: the unconditioned
        rest). An unguided cache's logits pass unchanged."""
        if cache.guidance is None:
            return logits
        out = []
        for lg in logits:
            cond, uncond = lg.float().log_softmax(-1).chunk(2)
            out.append(uncond + cache.guidance * (cond - uncond))
        return out

    @staticmethod
    def _paired(x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """B rows of what was sampled -> the guided cache's 2B rows (both halves go on from
        the same tokens)."""
        return x if cache.guidance is None else torch.cat([x, x])

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
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
        guidance: float | None = None,
    ) -> KVCache:
        """A cache of k <= context frames (B, k, N) and the k-1 actions (B, k-1, A) between
        them (and their conditioning (B, k, N+1, D)), frame i at time ``start_time + i``.
        ``parallel`` builds it with the block-causal mask, for ``decode_frame_parallel``.
        Instruction models keep ``text`` (tokens (B, L, D), mask (B, L)) in it. With
        ``guidance`` the B rows are 2 x B': the conditioned rows, then the same without
        their conditioning, and the decoders return B' rows."""
        if guidance is not None and tokens.shape[0] % 2:
            raise ValueError("a guided cache holds 2 x B rows: conditioned, then not")
        self._check_inputs(tokens, actions, min_frames=1)
        if tokens.shape[1] > self.cfg.context:
            raise ValueError(
                f"prefill takes at most context={self.cfg.context} frames, got "
                f"{tokens.shape[1]}; pass the last ones"
            )
        b, (h, dh) = tokens.shape[0], (self.cfg.heads, self.cfg.width // self.cfg.heads)
        empty = self.mask_embedding.new_zeros(b, h, 0, dh)
        depth = self.cfg.depth
        mode = "block" if parallel else "causal"
        cache = KVCache([empty] * depth, [empty] * depth, mode=mode, text=text, guidance=guidance)
        x, pos = self._embed_sequence(tokens, actions, start_time=start_time, cond=cond)
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
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next frame's tokens (B, N) after ``action`` (B, A) (and with the new frame's
        conditioning ``cond`` (B, N+1, D), state-track models), one token at a time.

        Feeds the action token, then each sampled token, one per step through the (causal)
        cache; the finished frame stays in the cache, which then keeps the last ``context``
        frames (the oldest frame's keys still carry what it saw of older frames, as in
        Transformer-XL). Randomness only from ``generator``.
        """
        self._check_cache(cache, "causal", action)
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        n = self.cfg.tokens_per_frame
        pos = self._frame_positions(cache.next_time)  # (N+1, 3): action, then the grid
        self._check_conditioning(None if cond is None else cond[:, None], 1, cache.batch_size)
        slots = self.slot_embedding(self._slots(pos))  # (N+1, D)
        slots = slots if cond is None else slots + cond  # ([B,] N+1, D)
        x = self._action_features(action)[:, None] + slots[..., :1, :]  # (B, 1, D)
        out = torch.empty(cache.batch_size, n, dtype=torch.long, device=action.device)
        for j in range(n + 1):
            h = self._run(x, pos[j : j + 1], cache, append=True)  # (B, 1, D)
            if j == n:  # the last token only had to enter the cache
                break
            logits = self._guided(self._logits(h), cache)
            out[:, j : j + 1] = self._paired(self._sample_tokens(logits, generator, **kw)[0], cache)
            x = self._token_features(out[:, j : j + 1]) + slots[..., j + 1 : j + 2, :]
        self._end_frame(cache)
        return out[: len(out) // 2] if cache.guidance is not None else out

    @torch.no_grad()
    def decode_frame_nocache(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        cond: torch.Tensor | None = None,
        text: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Reference for ``decode_frame`` (unguided): the next frame (B, N) after context
        ``tokens`` (B, k, N) and ``actions`` (B, k, A) (the last one leads to the new frame;
        ``cond`` (B, k+1, N+1, D) conditions the k frames and the new one; ``text`` as in
        ``forward``), recomputing the whole sequence for every token. Same draws from
        ``generator``."""
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        b, _, n = tokens.shape
        out = torch.zeros(b, 1, n, dtype=torch.long, device=tokens.device)
        for j in range(n):  # positions > j are placeholders the causal mask hides
            logits = self.forward(torch.cat([tokens, out], 1), actions, cond, text)
            out[:, 0, j] = self._sample_tokens([lg[:, -1, j] for lg in logits], generator, **kw)[0]
        return out[:, 0]

    def _frame_block(
        self,
        action: torch.Tensor,
        tokens: torch.Tensor,
        masked: torch.Tensor | None,
        time: int,
        cond: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, N+1, D) and positions (N+1, 3) of [a, frame] at ``time``, the
        ``masked`` (B, N) tokens replaced by [MASK], plus the frame's conditioning
        ``cond`` (B, N+1, D) where given."""
        frame = self._token_features(tokens)  # (B, N, D)
        if masked is not None:
            frame = torch.where(masked[..., None], self.mask_embedding, frame)
        x = torch.cat([self._action_features(action)[:, None], frame], 1)
        pos = self._frame_positions(time)
        x = x + self.slot_embedding(self._slots(pos))
        return (x if cond is None else x + cond), pos

    @torch.no_grad()
    def predict_masked(
        self,
        cache: KVCache,
        action: torch.Tensor,
        tokens: torch.Tensor,
        masked: torch.Tensor,
        cond: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Parallel-mode logits, per digit (B, N, levels[i]), of the frame after ``action``
        (B, A) given a block cache, its tokens (B, N) with ``masked`` (B, N) ones hidden.
        The frame's N+1 inputs attend to the cache and to each other; nothing is cached."""
        self._check_cache(cache, "block", action)
        x, pos = self._frame_block(action, tokens, masked, cache.next_time, cond)
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
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next frame's tokens (B, N) after ``action`` (B, A) in ``steps`` MaskGIT passes
        (with the new frame's conditioning ``cond`` (B, N+1, D), state-track models).

        Starts all-masked; each pass samples every masked token (``predict_masked``: the
        frame's N+1 inputs against the cached context, recomputed each pass), keeps the
        most confident (sum of the digits' log-probabilities, plus Gumbel noise scaled by
        ``choice_temperature * (1 - progress)``) and re-masks the other
        ``floor(N * cos(pi/2 * (s+1)/steps))``. A last pass puts the finished frame in the
        cache (``cache`` must come from ``prefill(..., parallel=True)``).
        """
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        rows, n = cache.batch_size, self.cfg.tokens_per_frame
        self._check_conditioning(None if cond is None else cond[:, None], 1, rows)
        b = rows // 2 if cache.guidance is not None else rows  # the rows sampled
        tokens = torch.zeros(b, n, dtype=torch.long, device=action.device)
        masked = torch.ones(b, n, dtype=torch.bool, device=action.device)
        pair = lambda x: self._paired(x, cache)  # noqa: E731
        for s in range(steps):
            logits = self.predict_masked(cache, action, pair(tokens), pair(masked), cond)
            logits = self._guided(logits, cache)
            sampled, d = self._sample_tokens(logits, generator, **kw)  # (B, N), (B, N, L)
            conf = sum(
                lg.float().log_softmax(-1).gather(-1, d[..., i : i + 1])[..., 0]
                for i, lg in enumerate(logits)
            )  # (B, N)
            tokens = torch.where(masked, sampled, tokens)
            masked = remask(conf, masked, s, steps, choice_temperature, generator)
        x, pos = self._frame_block(action, pair(tokens), None, cache.next_time, cond)
        self._run(x, pos, cache, append=True, block=True)
        self._end_frame(cache)
        return tokens
