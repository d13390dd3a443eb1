"""Learned reward / termination / success heads (``dynamics/outcome_heads.py``) and the
state-track features a world gets from its StateSpec's roles
(``dynamics/state_features.py``)."""

import numpy as np
import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.dynamics.data import LatentEpisodes, WindowBatcher
from cosmos_env.dynamics.diffusion.config import (
    ContactConfig,
    DiffusionConfig,
    FrameHeadConfig,
    IntegratorConfig,
)
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.outcome_heads import OUTCOMES, OutcomeHeads
from cosmos_env.dynamics.state_features import FEATURES, moving_objects, resolve_state_features
from cosmos_env.sim import state_layout as sl

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S, A = 4, 2  # state and action dims of the synthetic transitions


def transitions(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Standardised states before and after a step (n, S), actions (n, A) in [-1, 1], and
    their outcomes: a reward with an action cost, offset from 0 so that the heads must undo
    their standardisation, terminal when the first state dim passes 0.5, success when the
    second is positive."""
    g = torch.Generator().manual_seed(seed)
    before = torch.randn(n, S, generator=g)
    action = torch.rand(n, A, generator=g) * 2 - 1
    after = torch.randn(n, S, generator=g)
    targets = {
        "reward": 3.0 - after[:, 0].abs() - action.pow(2).sum(1),
        "is_terminal": (after[:, 0] > 0.5).float(),
        "is_success": (after[:, 1] > 0.0).float(),
    }
    return before, action, after, targets


def test_outcome_heads_learn_a_reward_with_an_action_cost_and_the_flags():
    torch.manual_seed(0)
    heads = OutcomeHeads(S, A, 64)
    before, action, after, targets = transitions(4096, seed=0)
    heads.set_normalisation(targets["reward"])
    assert heads.reward_mean.item() == pytest.approx(targets["reward"].mean().item())
    assert heads.reward_std.item() == pytest.approx(targets["reward"].std().item())
    test = transitions(1024, seed=1)
    with torch.no_grad():
        first = heads.loss(*test[:3], test[3]).item()
    opt = torch.optim.Adam(heads.parameters())
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=400)
    rng = np.random.default_rng(0)
    for _ in range(400):
        i = torch.from_numpy(rng.integers(0, len(before), 256))
        loss = heads.loss(before[i], action[i], after[i], {k: v[i] for k, v in targets.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    heads.eval()
    with torch.no_grad():
        out = heads(*test[:3])
        last = heads.loss(*test[:3], test[3]).item()
    assert set(out) == set(OUTCOMES) and all(v.shape == (1024,) for v in out.values())
    assert last < 0.25 * first
    true = test[3]
    # The reward in the store's units (mean ~1.7, std ~0.8): the held-out error falls from
    # ~0.8 std (untrained) to ~0.07 std.
    reward_err = (out["reward"] - true["reward"]).abs().mean().item()
    assert reward_err < 0.12 * true["reward"].std().item()
    for flag in ("is_terminal", "is_success"):
        assert 0.0 <= out[flag].min() and out[flag].max() <= 1.0  # probabilities
        accuracy = ((out[flag] > 0.5).float() == true[flag]).float().mean().item()
        assert accuracy > 0.95, (flag, accuracy)


def outcome_model(**overrides) -> LatentDynamics:
    cfg = dict(latent_channels=2, latent_size=4, context=2, action_dim=A, state_dim=S)
    cfg |= dict(**TINY_NET, outcome_width=16)
    torch.manual_seed(0)
    return LatentDynamics(DiffusionConfig.from_dict(dict(**{**cfg, **overrides}))).eval()


def test_predict_outcome_reads_standardised_states_and_needs_heads():
    with pytest.raises(ValueError, match=r"no outcome heads \(dynamics.outcome_heads=null\)"):
        outcome_model().predict_outcome(torch.zeros(1, S), torch.zeros(1, A), torch.zeros(1, S))
    model = outcome_model(outcome_heads=True)
    assert isinstance(model.outcome, OutcomeHeads)
    assert any(k.startswith("outcome.") for k in model.state_dict())  # released with the rest
    with torch.no_grad():
        for p in model.outcome.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.state_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 10.0]))  # world units
    model.state_std.copy_(torch.tensor([2.0, 0.5, 1.0, 4.0]))
    model.outcome.reward_mean.fill_(-1.0)
    model.outcome.reward_std.fill_(3.0)
    g = torch.Generator().manual_seed(0)
    state, nxt = torch.randn(5, S, generator=g) * 3, torch.randn(5, S, generator=g) * 3
    action = torch.rand(5, A, generator=g) * 2 - 1
    out = model.predict_outcome(state, action, nxt)
    expected = model.outcome(model.standardise_state(state), action, model.standardise_state(nxt))
    assert set(out) == set(OUTCOMES)
    for key in OUTCOMES:
        torch.testing.assert_close(out[key], expected[key])
    # Its loss, on a context window (B, K, S) ending at ``state``, is float32 under bf16.
    targets = {"reward": torch.randn(5), "is_terminal": torch.ones(5), "is_success": torch.zeros(5)}
    ctx, actions = torch.stack([state, state], 1), torch.stack([action, action], 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.outcome_loss(ctx, actions, nxt, targets)
    assert loss.dtype == torch.float32
    plain = model.outcome.loss(
        model.standardise_state(state), action, model.standardise_state(nxt), targets
    )
    torch.testing.assert_close(loss, plain)


def test_state_windows_carry_the_outcomes_of_the_row_arrived_at():
    n = 10  # two episodes of 5 rows; row r has state r and reward 10 r, terminal at its end
    rows = np.arange(n, dtype=np.float32)
    outcomes = np.stack([rows * 10, (rows % 5 == 4), rows % 2], 1).astype(np.float32)
    episodes = LatentEpisodes(
        latents=np.zeros((n, 1, 2, 2), np.float16),
        actions=np.ones((n, A), np.float32),
        states=np.repeat(rows[:, None], S, axis=1),
        starts=np.array([0, 5]),
        ends=np.array([5, 10]),
        outcomes=outcomes,
    )
    batch = WindowBatcher(episodes, context=2).sample_states(64, np.random.default_rng(0))
    assert set(batch) == {"context_states", "actions", "target_state", "outcomes"}
    arrived = batch["target_state"][:, 0]
    assert set(batch["outcomes"]) == set(OUTCOMES)
    torch.testing.assert_close(batch["outcomes"]["reward"], arrived * 10)
    torch.testing.assert_close(batch["outcomes"]["is_terminal"], (arrived % 5 == 4).float())
    torch.testing.assert_close(batch["outcomes"]["is_success"], arrived % 2)
    # Without outcome columns the rewards and flags read as 0.
    plain = LatentEpisodes(episodes.latents, episodes.actions, episodes.states, [0, 5], [5, 10])
    assert plain.outcomes.shape == (n, len(OUTCOMES)) and not plain.outcomes.any()


# ----- state-track features from the StateSpec's roles -----------------------------------

CAMERA = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
TABLETOP_ACTIONS = ActionSpec(
    names=("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"),
    units=("m", "m", "m", "rad", "rad", "rad", "open_fraction"),
    low=(-0.04,) * 3 + (-0.25,) * 3 + (0.0,),
    high=(0.04,) * 3 + (0.25,) * 3 + (1.0,),
)


def tabletop_states(n: int = 20) -> np.ndarray:
    """States (n, 36) in which the gripper, the cube and the cylinder move; the block slot
    stays empty (zeros), as in a two-object scene."""
    rng = np.random.default_rng(0)
    states = np.zeros((n, sl.STATE_DIM), np.float32)
    for name in ("gripper_pos", "cube_pos", "cylinder_pos"):
        states[:, sl.slot(name)] = rng.uniform(-0.1, 0.1, (n, 3))
    for name in ("gripper_quat", "cube_quat", "cylinder_quat"):
        states[:, sl.slot(name)] = [1.0, 0.0, 0.0, 0.0]
    return states


def parts(d: DiffusionConfig) -> tuple:
    """The state track's optional parts: integrator, contact, keypoints, frame head."""
    track = d.state_track
    return (track.integrator, track.contact, track.keypoints, track.frame_head)


def track_config(**overrides) -> DiffusionConfig:
    small = dict(latent_channels=2, latent_size=4, context=2, width=32, depth=1, heads=2)
    small |= dict(adaln_rank=8, probe_width=8, state_width=16, frame_width=16)
    return DiffusionConfig.from_dict(dict(**{**small, "state_track": True, **overrides}))


def test_a_tabletop_spec_switches_on_every_feature():
    spec = sl.tabletop_state_spec(CAMERA)
    states = tabletop_states()
    assert moving_objects(spec, states) == ["cube", "cylinder"]  # the block never moves
    d = track_config()
    on = resolve_state_features(d, spec, TABLETOP_ACTIONS, states, list(FEATURES))
    assert on == ["integrator", "contact", "keypoints", "frame_head"]
    track = d.state_track
    assert track.integrator == IntegratorConfig("gripper_pos")
    assert track.contact == ContactConfig(["cube_pos", "cylinder_pos"])
    assert track.keypoints.slots == ["gripper_pos", "cube_pos", "cylinder_pos"]
    assert track.keypoints.camera == CAMERA.ravel().tolist()
    assert track.frame_head == FrameHeadConfig(["cube", "cylinder"], "gripper_quat")
    assert StateSpec.from_dict(d.state_spec) == spec
    assert d.action_low == list(TABLETOP_ACTIONS.low)  # the range the integrator scales to
    assert d.action_high == list(TABLETOP_ACTIONS.high)
    model = LatentDynamics(d)  # the filled-in config builds every part
    assert model.contact_slots == [sl.slot("cube_pos"), sl.slot("cylinder_pos")]
    assert model.frame_head is not None and d.keypoint_channels == 3 * 3

    # Keypoints need the spec's camera; features not asked for stay off.
    d = track_config()
    no_camera = sl.tabletop_state_spec()
    on = resolve_state_features(d, no_camera, TABLETOP_ACTIONS, states, list(FEATURES))
    assert on == ["integrator", "contact", "frame_head"] and not d.state_track.keypoints
    d = track_config()
    assert resolve_state_features(d, spec, TABLETOP_ACTIONS, states, ["integrator"]) == [
        "integrator"
    ]
    assert parts(d) == (IntegratorConfig("gripper_pos"), None, None, None)
    # Slots the config names win over the roles.
    d = track_config(ee_slot="gripper_pos", state_relative=["cube_pos"])
    on = resolve_state_features(d, spec, TABLETOP_ACTIONS, states, ["integrator", "contact"])
    assert on == ["integrator", "contact"] and d.state_track.contact.slots == ["cube_pos"]
    # Without a state track there is nothing to switch on, but the spec is still recorded.
    d = track_config(state_track=False)
    assert resolve_state_features(d, spec, TABLETOP_ACTIONS, states, list(FEATURES)) == []
    assert d.state_spec == spec.to_dict() and d.state_track is None


def test_a_flat_spec_switches_on_no_feature():
    flat = StateSpec.flat([f"q{i}" for i in range(S)], kind="joint")
    actions = ActionSpec(("t0", "t1"), ("Nm", "Nm"), (-1.0, -1.0), (1.0, 1.0))
    states = np.random.default_rng(0).normal(size=(20, S)).astype(np.float32)
    d = track_config()  # 36 state dims and 7 action channels: the data's dims win
    assert resolve_state_features(d, flat, actions, states, list(FEATURES)) == []
    assert (d.state_dim, d.action_dim) == (S, A)
    assert parts(d) == (None, None, None, None)
    assert d.state_spec == flat.to_dict() and d.action_high == [1.0, 1.0]
    model = LatentDynamics(d)  # the plain state MLP
    assert model.state_dynamics is not None and not model.contact_slots
    assert model.frame_head is None and model.cfg.keypoint_channels == 0
    with pytest.raises(ValueError, match="unknown state-track features"):
        resolve_state_features(track_config(), flat, actions, states, ["teleport"])
    d = track_config(state_dim=S, action_dim=A, keypoints=["q0"])
    with pytest.raises(ValueError, match="camera the StateSpec lacks"):
        resolve_state_features(d, flat, actions, states, list(FEATURES))


def test_landmarks_and_a_camera_switch_on_keypoint_maps_alone():
    """A joint-torque arm (Reacher): joint slots, then its links' positions as landmarks."""
    from cosmos_env.data.state_spec import StateSlot

    joints = [StateSlot(f"q{i}", 1, "joint", "rad") for i in range(2)]
    marks = [StateSlot(f"{b}_pos", 3, "position", "m") for b in ("elbow", "tip")]
    spec = StateSpec((*joints, *marks), cameras={"top": CAMERA.ravel()}, landmarks=("elbow", "tip"))
    assert StateSpec.from_dict(spec.to_dict()) == spec
    states = np.random.default_rng(0).normal(size=(20, spec.dim)).astype(np.float32)
    torques = ActionSpec(("t0", "t1"), ("Nm", "Nm"), (-1.0, -1.0), (1.0, 1.0))
    d = track_config()
    assert resolve_state_features(d, spec, torques, states, list(FEATURES)) == ["keypoints"]
    assert d.state_track.keypoints.slots == ["elbow_pos", "tip_pos"]
    assert LatentDynamics(d).cfg.keypoint_channels == 2 * 3  # two points in three frames
    d = track_config()  # without the camera the points cannot be drawn
    spec = StateSpec(spec.slots, landmarks=("elbow", "tip"))
    assert resolve_state_features(d, spec, torques, states, list(FEATURES)) == []
    with pytest.raises(KeyError, match="wrist_pos"):
        StateSpec(spec.slots, landmarks=("wrist",))
