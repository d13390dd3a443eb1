"""LatentDynamics: the diffusion denoiser, the state probe and the data standardisation,
in one module so one ``model.safetensors`` holds everything the world model needs besides
its tokenizer."""

from __future__ import annotations

import torch

from cosmos_env.dynamics.conditioning import Conditioning, TextIds
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.denoiser import Denoiser
from cosmos_env.dynamics.diffusion.samplers import SAMPLERS, get_sampler, guided, karras_sigmas
from cosmos_env.dynamics.state_probe import StateProbe
from cosmos_env.dynamics.state_track import StateTrackModel
from cosmos_env.dynamics.text_conditioning import TextConditioner
from cosmos_env.machine import CXX_COMPILERS, has_cxx_compiler


class LatentDynamics(StateTrackModel):
    """Predicts the next tokenizer latent from past latents and actions, and reads the task
    state from a latent. Public tensors are raw tokenizer latents (B, [K,] C, h, w) and
    actions in [-1, 1]; standardisation happens inside with the training data's stats.

    The diffusion runs on the change from the last context latent to the next one (scaled
    to unit std): most of a tabletop frame does not move, so copying the last frame is
    built in and the network spends its capacity on the arm and the objects.

    With a ``cfg.state_track`` it also carries the task state: ``predict_next_state`` steps
    it with a learned state dynamics, and ``predict_next`` draws the frame that goes with
    it (states (B, K+1, S): the context's and the next frame's). With a ``cfg.text`` it
    follows instructions: the denoiser cross-attends to the encoded text.
    """

    samplers = tuple(SAMPLERS)  # what ``predict_next`` samples with

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, s = cfg.latent_channels, cfg.state_dim
        self.denoiser = Denoiser(cfg)
        # A world with no state (an action-free base) has no probe.
        self.probe = StateProbe(c, cfg.latent_size, s, cfg.probe_width) if s else None
        for name, size, value in (
            ("latent_mean", c, 0.0),
            ("latent_std", c, 1.0),
            ("delta_std", c, 1.0),
        ):
            self.register_buffer(name, torch.full((size,), value))
        self._build_state_parts(cfg)  # the state track, outcome heads, keypoints
        self.text = TextConditioner(cfg.text) if cfg.text is not None else None

    def set_normalisation(
        self,
        latents: torch.Tensor,
        next_latents: torch.Tensor,
        states: torch.Tensor,
        min_state_std: float = 1e-3,
        state_changes: torch.Tensor | None = None,
    ) -> None:
        """Per-channel stats of latents (N, C, h, w) and of their changes to the following
        latents (N, C, h, w); per-dim state stats from states (N, S) (constant dims keep a
        floor so they standardise to 0, not inf, and their range bounds the end-effector
        integrator) and, for the state track, of one-step state changes (M, S) in world
        units."""
        self.latent_mean.copy_(latents.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(latents.std(dim=(0, 2, 3)).clamp_min(1e-6))
        delta = self.standardise(next_latents) - self.standardise(latents)
        self.delta_std.copy_(delta.std(dim=(0, 2, 3)).clamp_min(1e-6))
        self.set_state_normalisation(states, min_state_std, state_changes)

    def standardise(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent (..., C, h, w) -> unit-std latent."""
        return (latent - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def unstandardise(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    def compile_network(self) -> None:
        """Compile the denoiser's network in place with ``torch.compile`` (inductor): the
        first pass at each input shape pays a one-off compile, later ones run fused kernels.
        Weights, state_dict and outputs (up to float rounding) are unchanged. The generated
        code uses the vector width of the ISA ATen runs: with ATen held to AVX2 on an
        AVX-512 CPU (``ATEN_CPU_CAPABILITY=avx2``) inductor's own choice, 512 bits, gave
        NaN at 64 sub-envs."""
        if not has_cxx_compiler():
            raise RuntimeError(
                "compile=True builds C++ kernels (torch.compile's inductor) and found no C++ "
                f"compiler ({', '.join(CXX_COMPILERS)}): install one (apt install g++) or "
                "leave compile off"
            )
        capability = torch.backends.cpu.get_cpu_capability()
        options = {"cpp.simdlen": 256} if capability == "AVX2" else None
        self.denoiser.net.compile(options=options)

    def losses(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        target: torch.Tensor,
        target_state: torch.Tensor,
        generator: torch.Generator | None = None,
        context_states: torch.Tensor | None = None,
        text: TextIds | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses on raw latents: context (B, K, C, h, w), actions (B, K, A),
        target (B, C, h, w) and its state (B, S); a state-track model also takes the
        context's states (B, K, S) and adds a "state" loss; an instruction model takes the
        instructions' token ids."""
        actions = self.read_actions(actions)
        target_std, context_std = self.standardise(target), self.standardise(context)
        delta = (target_std - context_std[:, -1]) / self.delta_std[:, None, None]
        state_std = (target_state - self.state_mean) / self.state_std
        losses = {"probe": target.new_zeros(())}
        if self.probe is not None:
            losses["probe"] = (self.probe(target_std).float() - state_std).pow(2).mean()
        cond = maps = None
        if self.state_dynamics is not None:
            if context_states is None:
                raise ValueError("a state-track model trains on context_states (B, K, S)")
            losses["state"] = self.state_loss(context_states, actions, target_state)
            cond = self.noisy_conditioning_states(context_states, target_state, generator)
            maps = self.keypoint_maps(cond * self.state_std + self.state_mean)
        conditioning = Conditioning(actions, states=cond, maps=maps)
        if self.text is not None:
            # Guidance drops the actions and the instruction of the same rows, so that the
            # unconditional prediction it needs is trained as often as either.
            keep = torch.rand(len(target), generator=generator) >= self.cfg.text.dropout
            tokens, mask = self.text.tokens(text, len(target), dropped=~keep)
            conditioning = conditioning.with_(action_mask=keep, text=tokens, text_mask=mask)
        losses["diffusion"] = self.denoiser.loss(delta, context_std, conditioning, generator)
        return losses

    @torch.no_grad()
    def predict_next(
        self,
        context: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int = 1,
        sampler: str = "euler",
        guidance: float = 1.0,
        states: torch.Tensor | None = None,
        text: TextIds | None = None,
    ) -> torch.Tensor:
        """Sample the next raw latent (B, C, h, w) given raw context latents
        (B, K, C, h, w), oldest first, and the actions (B, K, A) in [-1, 1] taken after
        each of them; a state-track model also takes the task states (B, K+1, S) of the
        context frames and of the next frame, in world units; an instruction model the
        instructions' token ids (None: the null text). ``guidance`` is classifier-free
        guidance on the actions and the instruction together. Randomness comes only from
        ``generator``."""
        cfg, actions = self.cfg, self.read_actions(actions)
        ctx = self.standardise(context)
        state_cond = maps = None
        if self.state_dynamics is not None:
            if states is None:
                raise ValueError("this model conditions on task states; pass states (B, K+1, S)")
            state_cond = self.standardise_state(states)
            maps = self.keypoint_maps(states.float())
        b = ctx.shape[0]
        shape = (b, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
        sigmas = karras_sigmas(steps, cfg.edm.sigma_min, cfg.edm.sigma_max, cfg.edm.rho)
        x = torch.randn(shape, generator=generator) * sigmas[0]
        full = Conditioning(actions, states=state_cond, maps=maps)
        empty = full.with_(action_mask=torch.zeros(b, dtype=torch.bool))
        if self.text is not None:
            tokens, mask = self.text.tokens(text, b)
            full = full.with_(text=tokens, text_mask=mask)
            tokens, mask = self.text.null(b)
            empty = empty.with_(text=tokens, text_mask=mask)

        def cond(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, sigma, ctx, full)

        def uncond(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, sigma, ctx, empty)

        delta = get_sampler(sampler)(guided(cond, uncond, guidance), x, sigmas, generator)
        return self.unstandardise(ctx[:, -1] + delta * self.delta_std[:, None, None])

    @torch.no_grad()
    def predict_state(self, latent: torch.Tensor) -> torch.Tensor:
        """Task state (B, S) in world units (layout: ``cfg.state_spec``) from raw latents
        (B, C, h, w)."""
        if self.probe is None:
            return latent.new_zeros(len(latent), 0)
        return self.probe(self.standardise(latent)).float() * self.state_std + self.state_mean
