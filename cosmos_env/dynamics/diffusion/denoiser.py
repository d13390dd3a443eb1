"""EDM denoiser (Karras et al. 2022): owns the preconditioning, the training sigmas and
the loss; the network it wraps is a bare function approximator (DIAMOND's split)."""

from __future__ import annotations

import torch
from torch import nn

from cosmos_env.dynamics.conditioning import Conditioning
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.network import DiT


class Denoiser(nn.Module):
    """D(x; sigma, context, cond) = c_skip * x + c_out * F(c_in * x, c_noise, context, cond).

    All latents here are standardised (unit std per channel, ``sigma_data`` = 1):
    ``x`` (B, C, h, w), ``context`` (B, K, C, h, w); ``cond`` the `Conditioning`.
    """

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.edm = cfg.edm
        self.net = DiT(cfg)

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(c_skip, c_out, c_in, c_noise) for sigma (B,), each (B,)."""
        sd2 = self.edm.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.edm.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        """The denoised estimate of the next latent, (B, C, h, w)."""
        c_skip, c_out, c_in, c_noise = (s[:, None, None, None] for s in self.scalings(sigma))
        f = self.net(x * c_in, c_noise.flatten(), context, cond)
        return c_skip * x + c_out * f.float()

    def sample_sigma(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Log-normal training sigmas (n,)."""
        z = torch.randn(n, generator=generator)
        return (self.edm.p_mean + self.edm.p_std * z).exp()

    def loss(
        self,
        target: torch.Tensor,
        context: torch.Tensor,
        cond: Conditioning,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """EDM loss on one next-latent prediction per sample (scalar).

        The weighting lambda(sigma) = 1 / c_out^2 makes it an unweighted MSE on the network
        output against its effective target. Context latents get a small random noise
        (no loss on them), so rollouts tolerate the model's own imperfect frames; actions
        are dropped with probability ``action_dropout`` for classifier-free guidance, unless
        ``cond`` already says which rows keep them.
        """
        b = target.shape[0]
        sigma = self.sample_sigma(b, generator)
        c_skip, c_out, c_in, c_noise = (s[:, None, None, None] for s in self.scalings(sigma))
        noisy = target + sigma[:, None, None, None] * torch.randn(target.shape, generator=generator)
        ctx_std = self.edm.context_noise * torch.rand(b, 1, 1, 1, 1, generator=generator)
        context = context + ctx_std * torch.randn(context.shape, generator=generator)
        if cond.action_mask is None:  # the caller may have drawn it (instruction models)
            cond = cond.with_(
                action_mask=torch.rand(b, generator=generator) >= self.edm.action_dropout
            )
        f = self.net(noisy * c_in, c_noise.flatten(), context, cond)
        effective_target = (target - c_skip * noisy) / c_out
        return (f.float() - effective_target).pow(2).mean()
