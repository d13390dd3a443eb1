"""The state track: a learned state dynamics stepped beside the latents, its losses and
normalisation, frame generation conditioned on it, and rollouts that carry it."""

import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.rollout import LatentContext, initial_context, rollout, step_context
from cosmos_env.dynamics.state_dynamics import StateDynamics
from cosmos_env.dynamics.state_track import STATE_CLIP
from cosmos_env.sim.state_layout import tabletop_state_spec

B, C, S, K, A, D = 3, 4, 4, 2, 7, 36  # batch, channels, side, context, action dim, state dim
SPEC = tabletop_state_spec().to_dict()  # what the 36 state dims mean: slots are named in it

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def track_model(
    seed: int = 0, state_track: bool = True, perturb: bool = True, **overrides
) -> LatentDynamics:
    cfg = DiffusionConfig.from_dict(
        dict(
            latent_channels=C,
            latent_size=S,
            context=K,
            **TINY_NET,
            state_track=state_track,
            state_width=16,
            **{"state_spec": SPEC, **overrides},
        )
    )
    torch.manual_seed(seed)
    model = LatentDynamics(cfg)
    if perturb:
        with torch.no_grad():  # zero-initialised output layers would ignore every input
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {
        "context": torch.randn(B, K, C, S, S, generator=g),
        "actions": torch.rand(B, K, A, generator=g) * 2 - 1,
        "target": torch.randn(B, C, S, S, generator=g),
        "target_state": torch.randn(B, D, generator=g),
        "context_states": torch.randn(B, K, D, generator=g),
    }


def test_state_dynamics_starts_at_no_change_and_reads_states_and_actions():
    net = StateDynamics(D, A, K, 16)
    states, actions = torch.randn(B, K, D), torch.rand(B, K, A)
    assert torch.equal(net(states, actions), torch.zeros(B, D))  # fresh: "nothing moves"
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    out = net(states, actions)
    assert out.shape == (B, D)
    assert not torch.allclose(out, net(states, -actions))
    assert not torch.allclose(out, net(states + 1, actions))


def test_losses_train_the_state_dynamics_and_need_context_states():
    model = track_model().train()
    b = batch()
    losses = model.losses(**b, generator=torch.Generator().manual_seed(0))
    assert set(losses) == {"diffusion", "probe", "state"}
    sum(losses.values()).backward()
    assert model.state_dynamics.net[-1].weight.grad.abs().sum() > 0
    assert model.denoiser.net.state_embedding.to_adaln[-1].weight.grad.abs().sum() > 0
    del b["context_states"]
    with pytest.raises(ValueError, match="context_states"):
        model.losses(**b)


def test_normalisation_of_state_changes():
    model = track_model()
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(64, C, S, S, generator=g)
    states = torch.randn(64, D, generator=g) * 2
    changes = torch.randn(64, D, generator=g) * 0.2
    changes[:, 3] = 0.0  # a dimension that never moves keeps a floor, not a zero
    model.set_normalisation(latents, latents, states, 1e-3, changes)
    expected = (changes / model.state_std).std(0).clamp_min(1e-3)
    torch.testing.assert_close(model.state_delta_std, expected)
    assert model.state_delta_std[3].item() == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="state_changes"):
        model.set_normalisation(latents, latents, states)


def test_predict_next_state_adds_the_scaled_change_in_world_units():
    model = track_model()
    model.state_mean.fill_(0.5)
    model.state_std.fill_(2.0)
    model.state_delta_std.fill_(0.25)
    states, actions = torch.randn(B, K, D), torch.rand(B, K, A)
    change = model.state_dynamics(model.standardise_state(states), actions)
    expected = (model.standardise_state(states)[:, -1] + change * 0.25) * 2.0 + 0.5
    torch.testing.assert_close(model.predict_next_state(states, actions), expected)


def test_standardised_states_are_clipped():
    model = track_model()
    far = torch.full((1, D), 1e6)
    assert model.standardise_state(far).max().item() == STATE_CLIP


def test_frames_are_conditioned_on_the_states():
    model = track_model()
    b = batch()
    states = torch.cat([b["context_states"], b["target_state"][:, None]], dim=1)

    def predict(s):
        gen = torch.Generator().manual_seed(0)
        return model.predict_next(b["context"], b["actions"], gen, states=s)

    same = predict(states)
    assert torch.equal(same, predict(states))
    moved = states.clone()
    moved[:, -1, :3] += 0.5  # only the next frame's gripper position differs
    assert not torch.allclose(same, predict(moved))
    with pytest.raises(ValueError, match="states"):
        model.predict_next(b["context"], b["actions"], torch.Generator())


def test_models_without_a_track_refuse_state_prediction():
    model = track_model(state_track=False)
    with pytest.raises(ValueError, match="no state track"):
        model.predict_next_state(torch.zeros(1, K, D), torch.zeros(1, K, A))


def test_context_pads_states_like_latents_and_checks_their_shape():
    latents, states = torch.randn(2, 1, C, S, S), torch.randn(2, 1, D)
    ctx = LatentContext(latents, K + 1, A, states=states)
    assert ctx.states.shape == (2, K + 1, D)
    assert torch.equal(ctx.states[:, 0], states[:, 0]) and torch.equal(
        ctx.states[:, -1], states[:, 0]
    )
    with pytest.raises(ValueError, match="states of shape"):
        LatentContext(latents, K, A, states=torch.randn(2, 2, D))


def test_initial_context_reads_unknown_states_with_the_probe():
    model = track_model()
    latents = torch.randn(2, 1, C, S, S)
    ctx = initial_context(model, latents)
    torch.testing.assert_close(ctx.states[:, -1], model.predict_state(latents[:, 0]))
    known = torch.randn(2, 1, D)
    assert torch.equal(initial_context(model, latents, states=known).states[:, -1], known[:, 0])
    assert initial_context(track_model(state_track=False), latents).states is None


def test_rollout_carries_the_state_track_and_conditions_each_frame_on_it():
    model = track_model()
    initial, first_states = torch.randn(2, 1, C, S, S), torch.randn(2, 1, D)
    actions = torch.rand(2, 3, A) * 2 - 1
    latents, states = rollout(
        model, initial, actions, torch.Generator().manual_seed(4), initial_states=first_states
    )
    assert latents.shape == (2, 3, C, S, S) and states.shape == (2, 3, D)
    # By hand: the state steps first, then the frame is drawn for it.
    ctx = LatentContext(initial, K, A, states=first_states)
    gen = torch.Generator().manual_seed(4)
    for t in range(3):
        step_actions = ctx.with_action(actions[:, t])
        state = model.predict_next_state(ctx.states, step_actions)
        latent = model.predict_next(ctx.latents, step_actions, gen, states=ctx.with_state(state))
        torch.testing.assert_close(states[:, t], state)
        torch.testing.assert_close(latents[:, t], latent)
        ctx.push(latent, step_actions, state)


def test_partial_reset_replaces_the_states_of_the_chosen_rows():
    model = track_model()
    ctx = initial_context(model, torch.randn(3, 1, C, S, S), states=torch.zeros(3, 1, D))
    step_context(model, ctx, torch.zeros(3, A), torch.Generator().manual_seed(0))
    fresh = initial_context(model, torch.randn(1, 1, C, S, S), states=torch.ones(1, 1, D))
    ctx.set_rows(torch.tensor([1]), fresh)
    assert torch.equal(ctx.states[1], torch.ones(K, D))
    assert not torch.equal(ctx.states[0], torch.ones(K, D))


def test_keypoint_maps_peak_where_the_camera_projects_the_points():
    from cosmos_env.dynamics.keypoints import keypoint_maps
    from cosmos_env.sim import state_layout as sl

    # A camera that maps (x, y, z) to (u, v) = (x, y), depth 1.
    projection = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    states = torch.zeros(1, 2, D)
    states[0, 0, sl.slot("gripper_pos")] = torch.tensor([0.25, -0.75, 0.3])
    states[0, 1, sl.slot("cube_pos")] = torch.tensor([-0.75, 0.75, 0.0])
    slots = [sl.slot("gripper_pos"), sl.slot("cube_pos")]  # state dims of the points
    maps = keypoint_maps(states, projection, slots, side=4, sigma=0.5)
    assert maps.shape == (1, 4, 4, 4)  # (frames x points) maps of 4x4 tokens
    peak = [divmod(int(m.argmax()), 4) for m in maps[0]]
    assert peak[0] == (0, 2)  # frame 0 gripper: row of v=-0.75, column of u=0.25
    assert peak[3] == (3, 0)  # frame 1 cube
    assert maps[0, 0, 0, 2] == pytest.approx(1.0) and maps.min() >= 0


def test_keypoint_model_reads_maps_of_the_states():
    camera = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 1.0]
    cfg = DiffusionConfig.from_dict(
        dict(
            latent_channels=C,
            latent_size=S,
            context=K,
            **TINY_NET,
            state_track=True,
            state_width=16,
            keypoints=["gripper_pos"],
            camera=camera,
            state_spec=SPEC,
        )
    )
    assert cfg.keypoint_channels == K + 1
    model = LatentDynamics(cfg)
    assert model.keypoint_slots == [slice(0, 3)]  # gripper_pos, looked up in the StateSpec
    assert model.denoiser.net.embed.in_features == (K + 1) * C + K + 1
    assert "projection" not in model.state_dict()  # rebuilt from the config, not the weights
    with pytest.raises(ValueError, match="state_track"):
        DiffusionConfig.from_dict(dict(keypoints=["gripper_pos"]))
    with pytest.raises(ValueError, match="12 numbers"):
        DiffusionConfig.from_dict(dict(state_track=True, camera=[1.0, 2.0]))
    losses = model.train().losses(**batch(), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(losses["diffusion"])


LOW, HIGH = [-0.04] * 3 + [-0.25] * 3 + [0.0], [0.04] * 3 + [0.25] * 3 + [1.0]


def integrator_model() -> LatentDynamics:
    """A model with the end-effector integrator, its state MLP fresh (zero output), and
    every state dim spanning [-1, 1] in training (z of gripper_pos: [0.02, 1])."""
    model = track_model(perturb=False, ee_slot="gripper_pos", action_low=LOW, action_high=HIGH)
    states = torch.rand(200, D) * 2 - 1
    states[:, 2] = states[:, 2].clamp_min(0.02)
    states[0, :3], states[1, :3] = torch.tensor([-1.0, -1.0, 0.02]), torch.ones(3)
    latents = torch.randn(8, C, S, S)
    model.set_normalisation(latents, latents, states, 1e-3, torch.randn(50, D) * 0.1)
    return model.eval()


def test_integrator_moves_the_end_effector_by_the_action_and_nothing_else():
    model = integrator_model()
    ctx = torch.rand(B, K, D) * 0.5
    actions = torch.rand(B, K, A) * 2 - 1
    nxt = model.predict_next_state(ctx, actions)
    expected = ctx[:, -1].clone()
    expected[:, :3] += 0.04 * actions[:, -1, :3]  # [-1, 1] -> [-4, 4] cm, exactly
    torch.testing.assert_close(nxt, expected, atol=1e-5, rtol=0)


def test_integrator_stops_the_end_effector_at_the_trained_range():
    model = integrator_model()
    ctx = torch.rand(B, K, D) * 0.5
    ctx[:, -1, 2] = 0.03  # 1 cm above the lowest z in training: the table
    actions = torch.zeros(B, K, A)
    actions[:, -1, 2] = -1.0  # down 4 cm
    assert torch.allclose(model.predict_next_state(ctx, actions)[:, 2], torch.tensor(0.02))
    assert model.state_min[2] == pytest.approx(0.02) and model.state_max[2] == 1.0


def test_integrator_state_loss_is_zero_on_exact_kinematics():
    model = integrator_model()
    b = batch()
    b["context_states"] = torch.rand(B, K, D) * 0.5
    b["target_state"] = b["context_states"][:, -1].clone()
    b["target_state"][:, :3] += 0.04 * b["actions"][:, -1, :3]
    losses = model.losses(**b, generator=torch.Generator().manual_seed(0))
    assert losses["state"].item() < 1e-8


def test_integrator_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="ee_slot are parts of the state track: set state_track"):
        DiffusionConfig.from_dict(dict(ee_slot="gripper_pos"))
    with pytest.raises(ValueError, match="one value per action channel"):
        DiffusionConfig.from_dict(
            dict(state_track=True, ee_slot="gripper_pos", action_low=[0.0] * 3)
        )
    small = dict(latent_channels=C, latent_size=S, context=K, width=32, depth=1, heads=2)
    with pytest.raises(ValueError, match="physical range"):
        LatentDynamics(
            DiffusionConfig.from_dict(
                dict(**small, state_track=True, ee_slot="gripper_pos", state_spec=SPEC)
            )
        )
    bad = DiffusionConfig.from_dict(
        dict(
            **small,
            state_track=True,
            ee_slot="gripper_opening",
            action_low=LOW,
            action_high=HIGH,
            state_spec=SPEC,
        )
    )
    with pytest.raises(
        ValueError, match="state_track.integrator: slot 'gripper_opening' is 1-d joint"
    ):
        LatentDynamics(bad).predict_next_state(torch.zeros(B, K, D), torch.zeros(B, K, A))
    # Slot names mean nothing without the StateSpec they are looked up in.
    unnamed = DiffusionConfig.from_dict(
        dict(**small, state_track=True, ee_slot="gripper_pos", action_low=LOW, action_high=HIGH)
    )
    with pytest.raises(
        ValueError, match=r"slots \(state_track.integrator\) but carries no state_spec"
    ):
        LatentDynamics(unnamed)
    with pytest.raises(ValueError, match="state_spec has 36 dims but state_dim is 35"):
        LatentDynamics(DiffusionConfig.from_dict(dict(**small, state_dim=35, state_spec=SPEC)))


def test_integrator_reads_its_action_channels_from_the_end_effector_role():
    from cosmos_env.data.state_spec import EndEffector, StateSpec

    spec = tabletop_state_spec()
    moved_by_3_4_5 = StateSpec(
        spec.slots, EndEffector("gripper_pos", "gripper_quat", (3, 4, 5)), spec.objects
    )
    model = track_model(
        perturb=False,
        ee_slot="gripper_pos",
        action_low=LOW,
        action_high=HIGH,
        state_spec=moved_by_3_4_5.to_dict(),
    )
    model.state_min.fill_(-10.0)
    model.state_max.fill_(10.0)
    ctx = torch.rand(B, K, D) * 0.5
    actions = torch.rand(B, K, A) * 2 - 1
    expected = ctx[:, -1].clone()
    expected[:, :3] += 0.25 * actions[:, -1, 3:6]  # channels 3..5, their range [-0.25, 0.25]
    torch.testing.assert_close(model.predict_next_state(ctx, actions), expected, atol=1e-5, rtol=0)


def test_contact_features_are_offsets_from_the_end_effector_and_last_motion():
    from cosmos_env.dynamics.state_dynamics import (
        MOTION_SCALE,
        OFFSET_SCALE,
        contact_feature_dim,
        contact_features,
    )

    spec = tabletop_state_spec()
    ee, cube = spec.position_slot("gripper_pos"), spec.position_slot("cube_pos")
    states = torch.zeros(1, 3, D)
    states[0, :, cube] = torch.tensor([[0.10, 0.0, 0.02], [0.11, 0.0, 0.02], [0.13, 0.0, 0.02]])
    states[0, :, ee] = torch.tensor([0.05, 0.0, 0.02])
    features = contact_features(states, ee, [cube])
    assert features.shape == (1, contact_feature_dim(1, 3))
    offsets, motion = features[0, :9].view(3, 3), features[0, 9:]
    torch.testing.assert_close(offsets[:, 0], torch.tensor([0.05, 0.06, 0.08]) / OFFSET_SCALE)
    torch.testing.assert_close(motion, torch.tensor([0.02, 0.0, 0.0]) / MOTION_SCALE)
    with pytest.raises(ValueError, match="state_relative: slot 'gripper_quat' is 4-d quaternion"):
        spec.position_slot("gripper_quat", "state_relative")


def test_a_track_with_contact_features_reads_where_the_cube_is():
    model = track_model(
        ee_slot="gripper_pos",
        action_low=[-0.04] * 3 + [-0.25] * 3 + [-1.0],
        action_high=[0.04] * 3 + [0.25] * 3 + [1.0],
        state_relative=["cube_pos"],
    )
    model.state_min.fill_(-10.0)  # the training range the integrator clips to
    model.state_max.fill_(10.0)
    b = batch()
    states, actions = b["context_states"], b["actions"]
    moved = states.clone()
    moved[..., 8:11] += 0.03  # the cube moves 3 cm
    first = model.predict_next_state(states, actions)
    assert first.shape == (B, D)
    assert not torch.allclose(first, model.predict_next_state(moved, actions))
    model.state_loss(states, actions, b["target_state"]).backward()
    with pytest.raises(
        ValueError, match="contact offsets are taken from the end effector: set the integrator"
    ):
        DiffusionConfig.from_dict(dict(state_track=True, state_relative=["cube_pos"]))
