"""The state track on the autoregressive backend: the same parts and parameter names as the
diffusion model's, the transformer conditioned on the states (every frame's tokens and the
action token that leads to it, keypoint maps slot by slot), rollouts that carry the track,
and errors that name the missing states."""

import pytest
import torch

from cosmos_env.dynamics.autoregressive import ARConfig
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.rollout import rollout
from cosmos_env.dynamics.track_config import (
    ContactConfig,
    IntegratorConfig,
    KeypointsConfig,
    StateTrackConfig,
)
from cosmos_env.sim.state_layout import tabletop_state_spec

B, SIDE, K = 2, 4, 3
N = SIDE * SIDE
SPEC = tabletop_state_spec()
D, A = SPEC.dim, 7
LOW, HIGH = [-0.04] * 3 + [-0.25] * 3 + [0.0], [0.04] * 3 + [0.25] * 3 + [1.0]
CAMERA = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 1.0]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(track: bool = True, keypoints: bool = True, **overrides) -> ARConfig:
    state_track = None
    if track:
        state_track = StateTrackConfig(
            width=16,
            integrator=IntegratorConfig("gripper_pos"),
            contact=ContactConfig(["cube_pos"]),
            keypoints=KeypointsConfig(["gripper_pos", "cube_pos"], CAMERA) if keypoints else None,
        )
    base = dict(
        latent_size=SIDE,
        context=K,
        width=32,
        depth=2,
        heads=2,
        probe_width=8,
        action_dim=A,
        state_dim=D,
        action_low=LOW,
        action_high=HIGH,
        state_track=state_track,
        state_spec=SPEC.to_dict(),
        temperature=0.0,
    )
    return ARConfig(**{**base, **overrides})


def model(seed: int = 0, **kw) -> TokenDynamics:
    torch.manual_seed(seed)
    m = TokenDynamics(config(**kw))
    states = torch.rand(300, D) * 0.4 - 0.2
    m.set_normalisation(states, 1e-3, torch.randn(100, D) * 0.01)
    return m.eval()


def window(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "tokens": torch.randint(0, 64000, (B, K + 1, SIDE, SIDE), generator=g),
        "actions": torch.rand(B, K, A, generator=g) * 2 - 1,
        "states": torch.rand(B, K + 1, D, generator=g) * 0.4 - 0.2,
    }


def test_the_track_has_the_diffusion_models_parameter_names():
    keys = set(model().state_dict())
    for name in ("state_mean", "state_std", "state_delta_std", "state_min", "state_max"):
        assert name in keys
    assert any(k.startswith("state_dynamics.net.") for k in keys)
    assert any(k.startswith("transformer.conditioning.state.") for k in keys)
    assert any(k.startswith("transformer.conditioning.keypoints.") for k in keys)
    plain = set(model(track=False).state_dict())
    assert not any("state_dynamics" in k or "conditioning" in k for k in plain)


def test_config_round_trips_the_track_and_rejects_unknown_keys():
    cfg = config()
    again = ARConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.state_track, StateTrackConfig)
    assert again.keypoint_channels == (K + 1) * 2 and again.keypoints_per_frame == 2
    with pytest.raises(ValueError, match="unknown autoregressive.state_track config keys"):
        ARConfig.from_dict({**cfg.to_dict(), "state_track": {"wdth": 3}})
    with pytest.raises(ValueError, match="action_low needs one value per action channel"):
        config(action_low=[0.0])


def test_losses_include_the_state_loss_and_train_the_conditioning():
    m = model().train()
    losses = m.losses(**window(), generator=torch.Generator().manual_seed(0))
    assert {"state", "ce", "parallel_ce", "probe"} <= set(losses)
    total = losses["ce"] + losses["parallel_ce"] + losses["state"]
    total.backward()
    grad = m.transformer.conditioning.state[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert m.transformer.conditioning.keypoints.weight.grad.abs().sum() > 0
    assert m.state_dynamics.net[-1].weight.grad.abs().sum() > 0


def test_next_frame_depends_on_the_states_it_is_given():
    m = model()
    w = window()
    ctx, actions = w["tokens"][:, :K], w["actions"]
    frames = []
    for shift in (0.0, 0.15):
        states = w["states"].clone()
        states[:, -1, 7:10] += shift  # only the next frame's cube moves
        cond = m.conditioning(m.standardise_state(states))
        assert cond.shape == (B, K + 1, N + 1, 32)
        cache = m.transformer.prefill(ctx.flatten(2), actions[:, :-1], cond=cond[:, :-1])
        frames.append(
            m.transformer.decode_frame(cache, actions[:, -1], temperature=0.0, cond=cond[:, -1])
        )
    # argmax decoding: a different frame can only come from the states
    assert not torch.equal(frames[0], frames[1])
    same = m.predict_next(ctx, actions, sampler="autoregressive", states=w["states"])
    assert torch.equal(same.flatten(1), frames[0])


@pytest.mark.parametrize("sampler", ["parallel", "autoregressive"])
def test_both_decoders_take_states_and_refuse_to_run_without(sampler):
    m = model()
    w = window()
    out = m.predict_next(
        w["tokens"][:, :K], w["actions"], steps=2, sampler=sampler, states=w["states"]
    )
    assert out.shape == (B, SIDE, SIDE) and out.dtype == torch.long
    with pytest.raises(ValueError, match=r"pass states \(B, K\+1, S\)"):
        m.predict_next(w["tokens"][:, :K], w["actions"], steps=2, sampler=sampler)
    with pytest.raises(ValueError, match="takes no frame conditioning"):
        plain = model(track=False)
        cond = torch.zeros(B, 1, N + 1, 32)
        plain.transformer.prefill(w["tokens"][:, :1].flatten(2), w["actions"][:, :0], cond=cond)


def test_keypoints_change_only_the_frame_tokens_not_the_lead_token():
    m = model()
    states = m.standardise_state(window()["states"])
    cond = m.conditioning(states)
    no_maps = m.transformer.conditioning.state(states)  # (B, F, D)
    assert torch.allclose(cond[:, :, 0], no_maps)  # index 0: the action token's
    assert not torch.allclose(cond[:, :, 1:], no_maps[:, :, None].expand_as(cond[:, :, 1:]))


def test_rollout_carries_the_track_and_the_integrator_moves_the_gripper():
    m = model()
    w = window()
    actions = torch.zeros(B, 4, A)
    actions[:, :, 0] = 1.0  # +x at full scale: +4 cm a step
    first, first_states = w["tokens"][:, :1], w["states"][:, :1]
    tokens, states = rollout(
        m, first, actions, steps=2, sampler="parallel", initial_states=first_states
    )
    assert tokens.shape == (B, 4, SIDE, SIDE) and states.shape == (B, 4, D)
    x = torch.cat([w["states"][:, :1, 0], states[:, :, 0]], dim=1)
    steps = x.diff(dim=1)
    state_max = m.state_max[0]
    assert ((steps - 0.04).abs() < 1e-5).logical_or(x[:, 1:] >= state_max - 1e-6).all()


def test_a_model_without_a_track_keeps_the_probe_path():
    m = model(track=False)
    w = window()
    assert "state" not in m.losses(**w)
    tokens, states = rollout(m, w["tokens"][:, :1], w["actions"][:, :2], None, 2, "parallel")
    assert states.shape == (B, 2, D)
    with pytest.raises(ValueError, match="no state track"):
        m.predict_next_state(w["states"][:, :K], w["actions"])
