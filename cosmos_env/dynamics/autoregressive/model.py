"""TokenDynamics: the autoregressive transformer, the state probe and the state
standardisation, in one module so one ``model.safetensors`` holds everything the token
world model needs besides its tokenizer (the AR counterpart of ``LatentDynamics``)."""

from __future__ import annotations

import torch
from torch import nn

from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.autoregressive.layers import digits
from cosmos_env.dynamics.autoregressive.transformer import ARTransformer
from cosmos_env.dynamics.state_probe import StateProbe


class TokenDynamics(nn.Module):
    """Predicts the next frame's FSQ tokens from past frames' tokens and actions, and reads
    the task state from a frame's tokens.

    Public tensors are token indices (B, [F,] h, w) int64 in [0, prod(levels)), h = w =
    ``latent_size``, and actions in [-1, 1]. The probe reads the frame's FSQ codes
    (B, L, h, w) in [-1, 1] (L = len(levels), the tokenizer's decoder input) and works on
    standardised states; ``predict_state`` returns world units.
    """

    samplers = ("parallel", "autoregressive")  # what ``predict_next`` decodes with

    def __init__(self, cfg: ARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s = cfg.state_dim
        self.transformer = ARTransformer(cfg)
        self.probe = StateProbe(len(cfg.levels), cfg.latent_size, s, cfg.probe_width)
        self.register_buffer("state_mean", torch.zeros(s))
        self.register_buffer("state_std", torch.ones(s))
        half = torch.tensor(cfg.levels) // 2
        self.register_buffer("code_half", half.float(), persistent=False)  # (L,)

    def compile_network(self) -> None:
        """Not offered: the token decoder's KV-cached passes change shape every token, so
        torch.compile would recompile instead of run; refused with the reason."""
        raise ValueError(
            "compile=True is for the diffusion backend: the AR decoder's KV-cached passes "
            "change shape every token, so torch.compile would recompile them; leave it off"
        )

    def set_normalisation(self, states: torch.Tensor, min_state_std: float = 1e-3) -> None:
        """Per-dim stats of the training states (N, S); constant dims keep a floor so they
        standardise to 0, not inf."""
        self.state_mean.copy_(states.mean(0))
        self.state_std.copy_(states.std(0).clamp_min(min_state_std))

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
    ) -> dict[str, torch.Tensor]:
        """Training losses on a window: tokens (B, F, h, w) int64, actions (B, F-1, A)
        (``actions[:, t]`` taken after frame t) and the frames' states (B, F, S).

        Both decoders are trained on the same batch, so one network serves both:
        ``ce``, ``z_loss``, ``accuracy`` are the teacher-forced (token by token) losses over
        frames 1..F-1; ``parallel_ce``, ``parallel_z_loss``, ``parallel_accuracy`` the
        MaskGIT losses on the last frame's masked tokens (random masks from
        ``generator``); ``probe`` the MSE of the standardised state read from the last
        frame. The caller weighs and sums them.
        """
        flat = tokens.flatten(2)  # (B, F, N)
        tf = self.transformer.loss(flat, actions)
        par = self.transformer.loss_parallel(flat, actions, generator)
        target = (states[:, -1] - self.state_mean) / self.state_std  # (B, S)
        return {
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
        **sampling,
    ) -> torch.Tensor:
        """Sample the next frame's tokens (B, h, w) int64 given context tokens
        (B, K, h, w), oldest first, and the actions (B, K, A) in [-1, 1] taken after each
        of them (K <= context). ``sampler`` "parallel": ``steps`` MaskGIT passes;
        "autoregressive": token by token (``steps`` unused). ``sampling``: temperature
        (default ``cfg.temperature``), top_k, top_p. Stateless (builds a fresh KV cache);
        randomness only from ``generator``."""
        sampling.setdefault("temperature", self.cfg.temperature)
        if sampler not in self.samplers:
            raise ValueError(f"sampler must be one of {self.samplers}, got {sampler!r}")
        b, k, h, w = context.shape
        if tuple(actions.shape[:2]) != (b, k):
            raise ValueError(f"actions must be (B, K, A) = {(b, k)} + (A,), got {actions.shape}")
        ar, parallel = self.transformer, sampler == "parallel"
        cache = ar.prefill(context.flatten(2), actions[:, :-1], parallel=parallel)
        if parallel:
            out = ar.decode_frame_parallel(cache, actions[:, -1], generator, steps, **sampling)
        else:
            out = ar.decode_frame(cache, actions[:, -1], generator, **sampling)
        return out.view(b, h, w)

    @torch.no_grad()
    def predict_state(self, tokens: torch.Tensor) -> torch.Tensor:
        """Task state (B, S) in world units (layout: ``sim/state_layout.py``) from token
        indices (B, h, w)."""
        return self._probe(tokens) * self.state_std + self.state_mean
