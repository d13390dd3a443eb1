"""The gripper-frame head: object motion predicted from features that do not change when
the scene is shifted or turned, and how the state track uses it."""

import math
from dataclasses import replace

import pytest
import torch
from tiny_diffusion import TINY_NET

from cosmos_env.dynamics.diffusion.config import (
    ContactConfig,
    DiffusionConfig,
    FrameHeadConfig,
    IntegratorConfig,
    StateTrackConfig,
)
from cosmos_env.dynamics.diffusion.model import LatentDynamics
from cosmos_env.dynamics.gripper_frame import GripperFrameHead, rotate_xy, yaw
from cosmos_env.sim import state_layout as sl

K, A, D = 3, 7, 36
SPEC = sl.tabletop_state_spec()  # the head finds its slots by name in the StateSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def yaw_quat(angle: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) of a turn by ``angle`` (...) about the vertical."""
    zeros = torch.zeros_like(angle)
    return torch.stack([torch.cos(angle / 2), zeros, zeros, torch.sin(angle / 2)], dim=-1)


def scene(batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random context states (B, K, S) with yaw-only orientations, and actions (B, K, A)."""
    g = torch.Generator().manual_seed(seed)
    states = torch.zeros(batch, K, D)
    for name in ("gripper_pos", "cube_pos", "cylinder_pos"):
        states[..., sl.slot(name)] = torch.rand(batch, K, 3, generator=g) * 0.2 - 0.1
    for name in ("gripper_quat", "cube_quat"):
        states[..., sl.slot(name)] = yaw_quat(torch.rand(batch, K, generator=g) * 6 - 3)
    return states, torch.rand(batch, K, A, generator=g) * 2 - 1


def turned(states, actions, angle: float, shift: tuple[float, float]):
    """The same scene turned by ``angle`` about the vertical through the origin, then
    shifted by ``shift`` on the table; the actions' planar deltas turn with it."""
    states, actions = states.clone(), actions.clone()
    angle_t = torch.full(states.shape[:2], angle)
    for name in ("gripper_pos", "cube_pos", "cylinder_pos"):
        index = sl.slot(name)
        xy = rotate_xy(states[..., index][..., :2], angle_t) + torch.tensor(shift)
        states[..., index.start : index.start + 2] = xy
    for name in ("gripper_quat", "cube_quat"):
        states[..., sl.slot(name)] = yaw_quat(yaw(states[..., sl.slot(name)]) + angle)
    actions[..., :2] = rotate_xy(actions[..., :2], angle_t)
    return states, actions


def head(seed: int = 0) -> GripperFrameHead:
    torch.manual_seed(seed)
    module = GripperFrameHead(
        ["cube"], ["cube_pos", "cylinder_pos"], "gripper_pos", "gripper_quat", K, A, 32, SPEC
    )
    with torch.no_grad():  # the zero-initialised output layer would predict no motion at all
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module.eval()


def test_yaw_reads_the_heading_of_a_turn_about_the_vertical():
    angles = torch.tensor([-2.5, -0.3, 0.0, 1.2, 3.0])
    torch.testing.assert_close(yaw(yaw_quat(angles)), angles)
    torch.testing.assert_close(
        rotate_xy(torch.tensor([1.0, 0.0]), torch.tensor(math.pi / 2)),
        torch.tensor([0.0, 1.0]),
        atol=1e-6,
        rtol=0,
    )


def test_features_do_not_change_when_the_scene_is_turned_and_shifted():
    model = head()
    states, actions = scene()
    moved_states, moved_actions = turned(states, actions, 0.9, (0.05, -0.03))
    torch.testing.assert_close(
        model.features(states, actions),
        model.features(moved_states, moved_actions),
        atol=1e-4,
        rtol=0,
    )
    # So the predicted motion turns with the scene: the same push in every direction.
    motion = model(states, actions)  # (B, 1, 2) metres
    assert motion.shape == (4, 1, 2) and motion.abs().max() > 1e-5
    expected = rotate_xy(motion, torch.full(motion.shape[:2], 0.9))
    torch.testing.assert_close(model(moved_states, moved_actions), expected, atol=1e-5, rtol=0)


def test_features_see_where_the_cube_is_relative_to_the_gripper():
    model = head()
    states, actions = scene()
    nudged = states.clone()
    nudged[:, :, sl.slot("cube_pos").start] += 0.01  # the cube alone moves 1 cm
    assert not torch.allclose(model(states, actions), model(nudged, actions))


def frame_track_model() -> LatentDynamics:
    cfg = DiffusionConfig.from_dict(
        dict(
            latent_channels=4,
            latent_size=4,
            context=K,
            **TINY_NET,
            state_track=True,
            state_width=16,
            ee_slot="gripper_pos",
            action_low=[-0.04] * 3 + [-0.25] * 3 + [0.0],
            action_high=[0.04] * 3 + [0.25] * 3 + [1.0],
            state_relative=["cube_pos", "cylinder_pos"],
            frame_objects=["cube"],
            frame_quat="gripper_quat",
            frame_width=32,
            state_spec=SPEC.to_dict(),
        )
    )
    torch.manual_seed(0)
    model = LatentDynamics(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        model.state_min.fill_(-10.0)
        model.state_max.fill_(10.0)
    return model.eval()


def test_the_track_moves_the_cube_on_the_table_by_the_heads_prediction():
    model = frame_track_model()
    states, actions = scene()
    cube = sl.slot("cube_pos")
    next_state = model.predict_next_state(states, actions)
    motion = model.frame_head(states, actions)[:, 0]  # (B, 2) metres
    torch.testing.assert_close(
        next_state[:, cube.start : cube.start + 2] - states[:, -1, cube.start : cube.start + 2],
        motion,
        atol=1e-5,
        rtol=0,
    )
    # The head is trained through the state loss with the rest of the track.
    model.train()
    target = states[:, -1] + 0.01
    model.state_loss(states, actions, target).backward()
    assert model.frame_head.net[0].weight.grad.abs().sum() > 0


def test_frame_head_config_errors_name_the_problem():
    head, integrator = FrameHeadConfig(["cube"], "gripper_quat"), IntegratorConfig("gripper_pos")
    with pytest.raises(ValueError, match="offsets: set contact"):
        DiffusionConfig(state_track=StateTrackConfig(integrator=integrator, frame_head=head))
    with pytest.raises(ValueError, match="orientation slot: set its quat"):
        track = StateTrackConfig(integrator=integrator, contact=ContactConfig(["cube_pos"]))
        DiffusionConfig(state_track=replace(track, frame_head=FrameHeadConfig(["cube"], "")))
    with pytest.raises(KeyError, match="unknown state slot 'plate_pos'"):
        GripperFrameHead(["plate"], ["cube_pos"], "gripper_pos", "gripper_quat", K, A, 8, SPEC)
    with pytest.raises(ValueError, match="state_relative: slot 'cube_quat' is 4-d quaternion"):
        GripperFrameHead(["cube"], ["cube_quat"], "gripper_pos", "gripper_quat", K, A, 8, SPEC)
    with pytest.raises(ValueError, match="ee_slot: slot 'gripper_opening' is 1-d joint"):
        GripperFrameHead(["cube"], ["cube_pos"], "gripper_opening", "gripper_quat", K, A, 8, SPEC)
    # A config that names the head's slots must carry the StateSpec they are looked up in.
    unnamed = {**frame_track_model().cfg.to_dict(), "state_spec": None}
    with pytest.raises(ValueError, match="carries no state_spec"):
        LatentDynamics(DiffusionConfig.from_dict(unnamed))


def test_the_state_loss_is_float32_under_bf16_autocast():
    model = frame_track_model().train()
    states, actions = scene()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.state_loss(states, actions, states[:, -1] + 0.01)
    assert loss.dtype == torch.float32
    with torch.no_grad():
        plain = model.state_loss(states, actions, states[:, -1] + 0.01)
    torch.testing.assert_close(loss.detach(), plain)
