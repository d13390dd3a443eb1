"""EDM diffusion dynamics: the denoiser's scalings and loss, the Karras schedule and the
samplers, the DiT's conditioning, and LatentDynamics' sampling and state probe."""

import math
import shutil

import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.dynamics.conditioning import Conditioning
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.denoiser import Denoiser
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.diffusion.network import DiT
from cosmos_env.dynamics.diffusion.samplers import (
    get_sampler,
    guided,
    karras_sigmas,
    sample_euler,
    sample_heun,
)
from cosmos_env.machine import has_cxx_compiler

B, C, S, K, A = 3, 4, 4, 2, 7  # batch, latent channels, latent side, context, action dim


# Tiny models: one thread avoids oversubscription when other jobs share the cores.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cfg(**overrides) -> DiffusionConfig:
    base = dict(
        latent_channels=C,
        latent_size=S,
        context=K,
        **TINY_NET,
    )
    base.update(overrides)
    return DiffusionConfig.from_dict(base)


def randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter: zero-initialised output layers would make a fresh model
    ignore its inputs, so conditioning tests would pass vacuously."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module.eval()


def inputs(seed: int = 0, b: int = B):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, C, S, S, generator=g)
    context = torch.randn(b, K, C, S, S, generator=g)
    actions = torch.rand(b, K, A, generator=g) * 2 - 1
    return x, context, actions


# ----------------------------------------------------------------------------- config


def test_config_validates_and_round_trips():
    cfg = tiny_cfg()
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.tokens == S * S and tiny_cfg(patch=2).tokens == (S // 2) ** 2
    with pytest.raises(ValueError, match="heads"):
        tiny_cfg(width=30)
    with pytest.raises(ValueError, match="patch"):
        tiny_cfg(patch=3)
    with pytest.raises(ValueError, match="context"):
        tiny_cfg(context=0)
    with pytest.raises(ValueError, match="unknown dynamics config keys"):
        DiffusionConfig.from_dict({**cfg.to_dict(), "depht": 2})


# ----------------------------------------------------------------------------- EDM denoiser


@pytest.mark.parametrize("sigma_data", [1.0, 0.5])
def test_edm_scalings(sigma_data):
    den = Denoiser(tiny_cfg(sigma_data=sigma_data))
    tiny = torch.tensor([1e-6])
    c_skip, c_out, _, _ = den.scalings(tiny)
    assert c_skip.item() == pytest.approx(1.0, abs=1e-6)
    assert c_out.item() == pytest.approx(0.0, abs=1e-5)
    sigma = torch.tensor([0.002, 0.1, 1.0, 5.0, 80.0])
    c_skip, c_out, c_in, c_noise = den.scalings(sigma)
    for s in (c_skip, c_out, c_in, c_noise):
        assert s.shape == sigma.shape
    torch.testing.assert_close(c_in * (sigma**2 + sigma_data**2).sqrt(), torch.ones(5))
    torch.testing.assert_close(c_noise, sigma.log() / 4)
    # Large noise: the skip path fades out and the network output carries sigma_data.
    assert c_skip[-1] < 1e-3 and c_out[-1].item() == pytest.approx(sigma_data, rel=1e-3)
    # The effective training target (x0 - c_skip * x) / c_out has unit variance when x0 has
    # std sigma_data: c_skip^2 sigma^2 + (1 - c_skip)^2 sigma_data^2 == c_out^2.
    lhs = c_skip**2 * sigma**2 + (1 - c_skip) ** 2 * sigma_data**2
    torch.testing.assert_close(lhs, c_out**2)


def test_denoiser_output_shape_and_small_sigma_identity():
    den = randomised(Denoiser(tiny_cfg()))
    x, context, actions = inputs()
    out = den(x, torch.full((B,), 1.0), context, Conditioning(actions))
    assert out.shape == (B, C, S, S) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # As sigma -> 0 the denoiser returns its input whatever the network says.
    near_clean = den(x, torch.full((B,), 1e-5), context, Conditioning(actions))
    torch.testing.assert_close(near_clean, x, atol=1e-3, rtol=0)


def test_loss_is_a_finite_scalar_and_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    den = Denoiser(tiny_cfg())
    g = torch.Generator().manual_seed(1)
    target = torch.randn(8, C, S, S, generator=g)
    context = target[:, None].repeat(1, K, 1, 1, 1) + 0.1 * torch.randn(8, K, C, S, S)
    actions = torch.rand(8, K, A, generator=g) * 2 - 1
    opt = torch.optim.Adam(den.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        # Same sigmas and noise every step: a fixed objective that must go down.
        loss = den.loss(target, context, Conditioning(actions), torch.Generator().manual_seed(2))
        assert loss.shape == () and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_loss_depends_only_on_the_generator():
    den = randomised(Denoiser(tiny_cfg()))
    x, context, actions = inputs()
    a = den.loss(x, context, Conditioning(actions), torch.Generator().manual_seed(5))
    b = den.loss(x, context, Conditioning(actions), torch.Generator().manual_seed(5))
    c = den.loss(x, context, Conditioning(actions), torch.Generator().manual_seed(6))
    assert a.item() == b.item() and a.item() != c.item()


# ----------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("steps", [1, 2, 5, 18])
def test_karras_sigmas(steps):
    sigmas = karras_sigmas(steps, 0.002, 5.0, 7.0)
    assert sigmas.shape == (steps + 1,)
    assert sigmas[0].item() == pytest.approx(5.0)
    assert sigmas[-1].item() == 0.0
    assert (sigmas[1:] < sigmas[:-1]).all()
    if steps > 1:
        assert sigmas[-2].item() == pytest.approx(0.002, rel=1e-4)


def test_karras_sigmas_refuses_no_steps():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        karras_sigmas(0, 0.002, 5.0)


def test_euler_with_one_step_returns_the_denoised_estimate():
    den = randomised(Denoiser(tiny_cfg()))
    x, context, actions = inputs()
    sigmas = karras_sigmas(1, 0.002, 5.0)
    noise = x * sigmas[0]

    def denoise(x, sigma):
        return den(x, sigma, context, Conditioning(actions))

    expected = denoise(noise, torch.full((B,), 5.0))
    out = sample_euler(denoise, noise, sigmas)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_heun_tracks_the_exact_ode_better_than_euler():
    """Data x0 ~ N(0, v): the ideal denoiser is x * v / (v + sigma^2), and the
    probability-flow ODE dx/dsigma = x sigma / (v + sigma^2) has the closed-form solution
    x(0) = x(sigma_max) * sqrt(v / (v + sigma_max^2))."""
    v, sigma_max = 0.5, 5.0

    def denoise(x, sigma):
        s2 = sigma[:, None] ** 2
        return x * v / (v + s2)

    x_t = torch.randn(4, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_t = x_t * sigma_max
    exact = x_t * math.sqrt(v / (v + sigma_max**2))
    errors = {}
    # (With 2-4 steps the first step, from 5 to under 0.3, is too long for Heun's
    # trapezoid to beat Euler here: second order pays off once steps resolve the curve.)
    for steps in (8, 12, 20):
        sigmas = karras_sigmas(steps, 0.002, sigma_max).double()
        err_euler = (sample_euler(denoise, x_t, sigmas) - exact).abs().max().item()
        err_heun = (sample_heun(denoise, x_t, sigmas) - exact).abs().max().item()
        assert err_heun < 0.6 * err_euler, (steps, err_heun, err_euler)
        errors[steps] = err_euler, err_heun
    # Second order: 2.5x the steps cuts Heun's error by far more than Euler's.
    assert errors[20][1] / errors[8][1] < 0.5 * errors[20][0] / errors[8][0]
    fine = sample_heun(denoise, x_t, karras_sigmas(60, 0.002, sigma_max).double())
    torch.testing.assert_close(fine, exact, rtol=0, atol=0.01)


def test_samplers_are_looked_up_by_name():
    assert get_sampler("euler") is sample_euler and get_sampler("heun") is sample_heun
    with pytest.raises(ValueError, match="unknown sampler 'dpm'"):
        get_sampler("dpm")


def test_guidance():
    def cond(x, sigma):
        return x + 1.0

    def uncond(x, sigma):
        return x - 1.0

    assert guided(cond, uncond, 1.0) is cond
    x, sigma = torch.zeros(2, 3), torch.ones(2)
    torch.testing.assert_close(guided(cond, uncond, 2.0)(x, sigma), torch.full((2, 3), 3.0))
    torch.testing.assert_close(guided(cond, uncond, 0.0)(x, sigma), torch.full((2, 3), -1.0))


# ----------------------------------------------------------------------------- DiT


@pytest.mark.parametrize("patch", [1, 2])
def test_dit_output_shape(patch):
    net = randomised(DiT(tiny_cfg(patch=patch)))
    x, context, actions = inputs()
    out = net(x, torch.zeros(B), context, Conditioning(actions))
    assert out.shape == (B, C, S, S)


def test_fresh_dit_outputs_zero():
    """AdaLN-zero: a fresh network's output layer is zero, so training starts from the
    skip connection alone."""
    x, context, actions = inputs()
    out = DiT(tiny_cfg())(x, torch.zeros(B), context, Conditioning(actions))
    assert torch.count_nonzero(out) == 0


def test_dit_is_conditioned_on_actions_context_and_noise():
    net = randomised(DiT(tiny_cfg()))
    x, context, actions = inputs()
    c_noise = torch.zeros(B)
    out = net(x, c_noise, context, Conditioning(actions))
    assert not torch.allclose(out, net(x, c_noise, context, Conditioning(-actions)), atol=1e-5)
    assert not torch.allclose(out, net(x, c_noise, context + 1.0, Conditioning(actions)), atol=1e-5)
    assert not torch.allclose(out, net(x, c_noise + 1.0, context, Conditioning(actions)), atol=1e-5)
    # Each sample's output depends on its own action only.
    other = actions.clone()
    other[0] = -other[0]
    changed = net(x, c_noise, context, Conditioning(other))
    assert not torch.allclose(out[0], changed[0], atol=1e-5)
    torch.testing.assert_close(out[1:], changed[1:])


def test_dropped_actions_do_not_matter():
    net = randomised(DiT(tiny_cfg()))
    x, context, actions = inputs()
    mask = torch.tensor([False, True, False])
    a = net(x, torch.zeros(B), context, Conditioning(actions, mask))
    b = net(x, torch.zeros(B), context, Conditioning(torch.rand(B, K, A) * 2 - 1, mask))
    torch.testing.assert_close(a[~mask], b[~mask])
    assert not torch.allclose(a[mask], b[mask], atol=1e-5)
    # A dropped action is the same as giving no action input at all
    no_actions = Conditioning(torch.zeros_like(actions), torch.zeros(B, dtype=bool))
    zeros = net(x, torch.zeros(B), context, no_actions)
    torch.testing.assert_close(a[~mask], zeros[~mask])


# ----------------------------------------------------------------------------- LatentDynamics


def test_predict_next_is_reproducible_from_its_generator():
    model = randomised(LatentDynamics(tiny_cfg()))
    _, context, actions = inputs()

    def predict(seed, **kw):
        return model.predict_next(context, actions, torch.Generator().manual_seed(seed), **kw)

    out = predict(0)
    assert out.shape == (B, C, S, S) and torch.isfinite(out).all()
    assert torch.equal(out, predict(0))
    assert not torch.allclose(out, predict(1))
    heun = predict(0, steps=3, sampler="heun")
    assert heun.shape == out.shape and torch.equal(heun, predict(0, steps=3, sampler="heun"))
    guided_out = predict(0, guidance=2.0)
    assert not torch.allclose(guided_out, out)


def test_predict_next_uses_the_actions_and_the_stats():
    model = randomised(LatentDynamics(tiny_cfg()))
    _, context, actions = inputs()
    out = model.predict_next(context, actions, torch.Generator().manual_seed(0))
    flipped = model.predict_next(context, -actions, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, flipped)
    # Raw latents are standardised inside and the prediction is mapped back: shifting and
    # scaling the data and its stats together shifts and scales the prediction.
    mean, std = torch.linspace(-1, 1, C), torch.linspace(0.5, 2, C)
    model.latent_mean.copy_(mean)
    model.latent_std.copy_(std)
    raw_ctx = context * std[:, None, None] + mean[:, None, None]
    shifted = model.predict_next(raw_ctx, actions, torch.Generator().manual_seed(0))
    torch.testing.assert_close(shifted, out * std[:, None, None] + mean[:, None, None])


def test_set_normalisation_and_predict_state():
    model = randomised(LatentDynamics(tiny_cfg()))
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(64, C, S, S, generator=g) * 3 + 2
    states = torch.randn(64, 36, generator=g)
    states[:, 5] = 1.5  # a constant dimension
    next_latents = latents + torch.randn(64, C, S, S, generator=g) * 0.3
    model.set_normalisation(latents, next_latents, states)
    torch.testing.assert_close(model.latent_mean, latents.mean(dim=(0, 2, 3)))
    # The diffusion target is the standardised change to the next latent, at unit std.
    delta = model.standardise(next_latents) - model.standardise(latents)
    torch.testing.assert_close(model.delta_std, delta.std(dim=(0, 2, 3)))
    assert model.state_std[5].item() == pytest.approx(1e-3)
    unit = model.standardise(latents)
    torch.testing.assert_close(unit.mean(dim=(0, 2, 3)), torch.zeros(C), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.unstandardise(unit), latents, atol=1e-4, rtol=1e-4)
    state = model.predict_state(latents[:B])
    assert state.shape == (B, 36) and state.dtype == torch.float32
    # The probe's output is unstandardised with the state stats.
    raw = model.probe(model.standardise(latents[:B]))
    torch.testing.assert_close(state, raw * model.state_std + model.state_mean)


def test_losses_are_finite_and_train_both_heads():
    model = randomised(LatentDynamics(tiny_cfg()))
    model.train()
    x, context, actions = inputs()
    losses = model.losses(context, actions, x, torch.randn(B, 36), torch.Generator())
    assert set(losses) == {"diffusion", "probe"}
    assert all(v.shape == () and torch.isfinite(v) for v in losses.values())
    (losses["diffusion"] + losses["probe"]).backward()
    assert model.probe.head[-1].weight.grad.abs().sum() > 0
    assert model.denoiser.net.out.weight.grad.abs().sum() > 0


@pytest.mark.skipif(
    not has_cxx_compiler(), reason="torch.compile needs a C++ compiler (apt install g++)"
)
def test_a_compiled_network_predicts_what_the_eager_one_does():
    model = randomised(LatentDynamics(tiny_cfg()))
    _, context, actions = inputs()
    eager = model.predict_next(context, actions, torch.Generator().manual_seed(0), steps=2)
    model.compile_network()
    compiled = model.predict_next(context, actions, torch.Generator().manual_seed(0), steps=2)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
    assert set(model.state_dict()) == set(LatentDynamics(tiny_cfg()).state_dict())


def test_compile_without_a_cxx_compiler_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="found no C\\+\\+ compiler .*apt install g\\+\\+"):
        LatentDynamics(tiny_cfg()).compile_network()
