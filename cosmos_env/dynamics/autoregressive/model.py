"""TokenDynamics: the autoregressive transformer, the state probe and the state
standardisation, in one module so one ``model.safetensors`` holds everything the token
world model needs besides its tokenizer (the AR counterpart of ``LatentDynamics``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.autoregressive.kv_cache import KVCache
from cosmos_env.dynamics.autoregressive.layers import digits
from cosmos_env.dynamics.autoregressive.transformer import ARTransformer
from cosmos_env.dynamics.conditioning import TextIds
from cosmos_env.dynamics.decoder_memory import DecoderMemory
from cosmos_env.dynamics.state_probe import StateProbe
from cosmos_env.dynamics.state_track import StateTrackModel
from cosmos_env.dynamics.text_conditioning import TextConditioner


@dataclass(frozen=True)
class DecoderInputs:
    """The transformer's per-row inputs for one frame: context tokens (R, K, N), actions
    (R, K, A), frame conditioning (R, K+1, N+1, D) and text (tokens (R, L, D), mask (R, L));
    R = 2B rows under guidance (``guidance``: its scale), else B."""

    tokens: torch.Tensor
    actions: torch.Tensor
    cond: torch.Tensor | None = None
    words: tuple[torch.Tensor, torch.Tensor] | None = None
    guidance: float | None = None

    def take(self, rows: torch.Tensor) -> DecoderInputs:
        """The inputs of rows ``rows`` (M,) alone."""
        cond = None if self.cond is None else self.cond[rows]
        words = None if self.words is None else (self.words[0][rows], self.words[1][rows])
        return DecoderInputs(self.tokens[rows], self.actions[rows], cond, words, self.guidance)


class TokenDynamics(StateTrackModel):
    """Predicts the next frame's FSQ tokens from past frames' tokens and actions, and reads
    the task state from a frame's tokens.

    Public tensors are token indices (B, [F,] h, w) int64 in [0, prod(levels)), h = w =
    ``latent_size``, and actions in [-1, 1]. The probe reads the frame's FSQ codes
    (B, L, h, w) in [-1, 1] (L = len(levels), the tokenizer's decoder input) and works on
    standardised states; ``predict_state`` returns world units.

    With a ``cfg.state_track`` it carries the task state as the diffusion model does
    (`StateTrackModel`): ``predict_next_state`` steps it, and ``predict_next`` draws the
    tokens that go with it (states (B, K+1, S): the context's and the next frame's). With
    a ``cfg.text`` it follows instructions: the transformer cross-attends to the text.
    """

    samplers = ("parallel", "autoregressive")  # what ``predict_next`` decodes with
    keeps_decoder_memory = True  # a rollout keeps the KV cache of its context

    def __init__(self, cfg: ARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s = cfg.state_dim
        self.transformer = ARTransformer(cfg)
        self.probe = StateProbe(len(cfg.levels), cfg.latent_size, s, cfg.probe_width)
        self._build_state_parts(cfg)  # state standardisation, track, outcome heads
        self.text = TextConditioner(cfg.text) if cfg.text is not None else None
        half = torch.tensor(cfg.levels) // 2
        self.register_buffer("code_half", half.float(), persistent=False)  # (L,)

    def compile_network(self) -> None:
        """Not offered: the token decoder's KV-cached passes change shape every token, so
        torch.compile would recompile instead of run; refused with the reason."""
        raise ValueError(
            "compile=True is for the diffusion backend: the AR decoder's KV-cached passes "
            "change shape every token, so torch.compile would recompile them; leave it off"
        )

    def set_normalisation(
        self,
        states: torch.Tensor,
        min_state_std: float = 1e-3,
        state_changes: torch.Tensor | None = None,
    ) -> None:
        """Per-dim stats of the training states (N, S) (constant dims keep a floor so they
        standardise to 0, not inf) and, for the state track, of one-step state changes
        (M, S) in world units."""
        self.set_state_normalisation(states, min_state_std, state_changes)

    def conditioning(self, states: torch.Tensor) -> torch.Tensor | None:
        """The transformer's frame conditioning (B, F, N+1, D) of standardised states
        (B, F, S) (keypoint maps drawn from them); None without a state track."""
        if self.state_dynamics is None:
            return None
        maps = self.keypoint_maps(states * self.state_std + self.state_mean)
        if maps is not None:
            maps = maps.unflatten(1, (states.shape[1], -1))  # (B, F, P, h, w)
        return self.transformer.frame_conditioning(states, maps)

    def codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token indices (B, h, w) -> FSQ codes (B, L, h, w) in [-1, 1], as
        ``FSQ.indices_to_codes`` (digit d of level l -> (d - l//2) / (l//2))."""
        d = digits(tokens, self.cfg.levels).float()  # (B, h, w, L)
        return ((d - self.code_half) / self.code_half).movedim(-1, 1)

    def _probe(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token indices (B, h, w) -> standardised state (B, S), float32."""
        return self.probe(self.codes(tokens)).float()

    def losses(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        generator: torch.Generator | None = None,
        text: TextIds | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses on a window: tokens (B, F, h, w) int64, actions (B, F-1, A)
        (``actions[:, t]`` taken after frame t) and the frames' states (B, F, S).

        Both decoders are trained on the same batch, so one network serves both:
        ``ce``, ``z_loss``, ``accuracy`` are the teacher-forced (token by token) losses over
        frames 1..F-1; ``parallel_ce``, ``parallel_z_loss``, ``parallel_accuracy`` the
        MaskGIT losses on the last frame's masked tokens (random masks from
        ``generator``); ``probe`` the MSE of the standardised state read from the last
        frame; with a state track, ``state`` its loss and the token losses conditioned on
        the windows' states (with noise, as at inference they come from the track).
        Instruction models read the windows' instructions (``text``; ``cfg.text.dropout``
        of them swapped for the null text, for guidance). The caller weighs and sums them.
        """
        flat = tokens.flatten(2)  # (B, F, N)
        cond, extra = None, {}
        if self.state_dynamics is not None:
            extra["state"] = self.state_loss(states[:, :-1], actions, states[:, -1])
            cond = self.conditioning(
                self.noisy_conditioning_states(states[:, :-1], states[:, -1], generator)
            )
        words = None
        if self.text is not None:
            dropped = torch.rand(len(tokens), generator=generator) < self.cfg.text.dropout
            words = self.text.tokens(text, len(tokens), dropped)
        tf = self.transformer.loss(flat, actions, cond, words)
        par = self.transformer.loss_parallel(flat, actions, generator, cond, words)
        target = (states[:, -1] - self.state_mean) / self.state_std  # (B, S)
        return {
            **extra,
            "ce": tf["ce"],
            "z_loss": tf["z_loss"],
            "accuracy": tf["accuracy"],
            "parallel_ce": par["ce"],
            "parallel_z_loss": par["z_loss"],
            "parallel_accuracy": par["accuracy"],
            "probe": (self._probe(tokens[:, -1]) - target).pow(2).mean(),
        }

    @torch.no_grad()
    def predict_next(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int = 8,
        sampler: str = "parallel",
        states: torch.Tensor | None = None,
        text: TextIds | None = None,
        guidance: float = 1.0,
        memory: DecoderMemory | None = None,
        **sampling,
    ) -> torch.Tensor:
        """Sample the next frame's tokens (B, h, w) int64 given context tokens
        (B, K, h, w), oldest first, and the actions (B, K, A) in [-1, 1] taken after each
        of them (K <= context); a state-track model also takes the task states (B, K+1, S)
        of the context frames and of the next frame, in world units. ``sampler``
        "parallel": ``steps`` MaskGIT passes;
        "autoregressive": token by token (``steps`` unused). ``sampling``: temperature
        (default ``cfg.temperature``), top_k, top_p. An instruction model reads ``text``
        (None: the null text), and ``guidance`` != 1 is classifier-free guidance on it.

        Without ``memory`` it is stateless: a fresh KV cache of the context, dropped after.
        A rollout passes its `DecoderMemory`: the cache is kept there, and each new frame
        enters it, so later steps skip the prefill of the context (only the rows marked
        stale, whose context was replaced, are prefilled anew). Each frame's keys then
        carry what it saw when it was decoded (as in Transformer-XL), not a prefill's.
        Randomness only from ``generator``."""
        sampling.setdefault("temperature", self.cfg.temperature)
        if sampler not in self.samplers:
            raise ValueError(f"sampler must be one of {self.samplers}, got {sampler!r}")
        b, k, h, w = context.shape
        if tuple(actions.shape[:2]) != (b, k):
            raise ValueError(f"actions must be (B, K, A) = {(b, k)} + (A,), got {actions.shape}")
        cond = None
        if self.state_dynamics is not None:
            if states is None or tuple(states.shape[:2]) != (b, k + 1):
                raise ValueError(
                    "this model conditions on task states; pass states (B, K+1, S) = "
                    f"{(b, k + 1)} + (S,)"
                )
            cond = self.conditioning(self.standardise_state(states.float()))
        inputs = self._decoder_inputs(context.flatten(2), actions, cond, text, guidance)
        parallel = sampler == "parallel"
        cache = self._context_cache(inputs, parallel, memory)
        last = None if inputs.cond is None else inputs.cond[:, -1]
        ar, action = self.transformer, inputs.actions[:, -1]
        if parallel:
            out = ar.decode_frame_parallel(cache, action, generator, steps, cond=last, **sampling)
        else:
            out = ar.decode_frame(cache, action, generator, cond=last, **sampling)
        return out.view(b, h, w)

    def _decoder_inputs(
        self,
        tokens: torch.Tensor,
        actions: torch.Tensor,
        cond: torch.Tensor | None,
        text: TextIds | None,
        guidance: float,
    ) -> DecoderInputs:
        """The transformer's inputs for B rows of context tokens (B, K, N), actions
        (B, K, A) and conditioning (B, K+1, N+1, D): as given, with the instruction's text
        tokens; for guidance on an instruction model 2B rows, the second B with the null
        text."""
        if self.text is None:
            return DecoderInputs(tokens, actions, cond)
        words = self.text.tokens(text, len(tokens))
        if guidance == 1.0:
            return DecoderInputs(tokens, actions, cond, words)
        words = _stack_texts(words, self.text.null(len(tokens)))
        cond = None if cond is None else torch.cat([cond, cond])
        tokens, actions = torch.cat([tokens, tokens]), torch.cat([actions, actions])
        return DecoderInputs(tokens, actions, cond, words, guidance)

    def _context_cache(
        self, inputs: DecoderInputs, parallel: bool, memory: DecoderMemory | None
    ) -> KVCache:
        """The KV cache of the context frames: the one ``memory`` keeps, with its stale rows
        prefilled anew at the cache's times, or else a fresh prefill (kept in ``memory``
        when given)."""
        mode = "block" if parallel else "causal"
        cache = None if memory is None else memory.cache
        rows = len(inputs.tokens)
        kept = (mode, rows, inputs.guidance)
        if cache is None or (cache.mode, cache.batch_size, cache.guidance) != kept:
            cache = self._prefill(inputs, parallel, start_time=0)
        elif memory.stale is not None:
            stale = memory.stale
            if inputs.guidance is not None:  # the unconditioned twin of each row too
                stale = torch.cat([stale, stale + rows // 2])
            start = cache.next_time - inputs.tokens.shape[1]
            cache.set_rows(stale, self._prefill(inputs.take(stale), parallel, start))
        if memory is not None:
            memory.cache, memory.stale = cache, None
        return cache

    def _prefill(self, inputs: DecoderInputs, parallel: bool, start_time: int) -> KVCache:
        """A cache of the context of ``inputs``, its first frame at ``start_time``."""
        past = None if inputs.cond is None else inputs.cond[:, :-1]
        return self.transformer.prefill(
            inputs.tokens,
            inputs.actions[:, :-1],
            start_time=start_time,
            parallel=parallel,
            cond=past,
            text=inputs.words,
            guidance=inputs.guidance,
        )

    @torch.no_grad()
    def predict_state(self, tokens: torch.Tensor) -> torch.Tensor:
        """Task state (B, S) in world units (layout: ``sim/state_layout.py``) from token
        indices (B, h, w)."""
        return self._probe(tokens) * self.state_std + self.state_mean


def _stack_texts(
    first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of text tokens (B, L, D) and masks (B, L), padded to one length and
    stacked: (2B, L', D), (2B, L')."""
    length = max(first[0].shape[1], second[0].shape[1])

    def pad(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        extra = length - tokens.shape[1]
        return F.pad(tokens, (0, 0, 0, extra)), F.pad(mask, (0, extra))

    (a, am), (b, bm) = pad(*first), pad(*second)
    return torch.cat([a, b]), torch.cat([am, bm])
