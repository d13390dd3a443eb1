"""Samplers as plain functions with one signature (k-diffusion's ``sampling.py``):
``sampler(denoise, x, sigmas, generator) -> x0``, where ``denoise(x, sigma)`` returns the
denoised estimate, ``x`` starts as noise at ``sigmas[0]`` and ``sigmas`` ends with 0."""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """The Karras et al. schedule: ``steps`` decreasing sigmas from sigma_max, then 0."""
    if steps < 1:
        raise ValueError(f"sampler steps must be >= 1, got {steps}")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0])
    ramp = torch.linspace(0, 1, steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, torch.zeros(1)])


def _expand(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.expand(x.shape[0])


@torch.no_grad()
def sample_euler(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Deterministic Euler steps of the probability-flow ODE (one network call each)."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        denoised = denoise(x, _expand(sigma, x))
        x = x + (x - denoised) / sigma * (sigma_next - sigma)
    return x


@torch.no_grad()
def sample_heun(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Heun's second-order method (EDM Algorithm 1): two calls per step, one for the last."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        denoised = denoise(x, _expand(sigma, x))
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if sigma_next == 0:
            x = x_euler
            continue
        d_next = (x_euler - denoise(x_euler, _expand(sigma_next, x))) / sigma_next
        x = x + (d + d_next) / 2 * (sigma_next - sigma)
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"euler": sample_euler, "heun": sample_heun}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def guided(cond: Denoise, uncond: Denoise, scale: float) -> Denoise:
    """Classifier-free guidance: uncond + scale * (cond - uncond); scale 1 is ``cond``."""
    if scale == 1.0:
        return cond

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        u = uncond(x, sigma)
        return u + scale * (cond(x, sigma) - u)

    return denoise
