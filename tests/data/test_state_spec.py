"""StateSpec: slots, lookups, roles, cameras and the dict round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosmos_env.data.state_spec import EndEffector, StateSlot, StateSpec

PROJECTION = np.arange(12, dtype=np.float64).reshape(3, 4) / 10


def make_spec() -> StateSpec:
    return StateSpec(
        (
            StateSlot("ee_pos", 3, "position", "m"),
            StateSlot("ee_quat", 4, "quaternion"),
            StateSlot("grip", 1, "joint", "m"),
            StateSlot("cube_pos", 3, "position", "m"),
            StateSlot("cube_present", 1, "flag"),
            StateSlot("zone_pos", 2, "position", "m"),
            StateSlot("vel", 5, "velocity", "m/s"),
        ),
        end_effector=EndEffector("ee_pos", "ee_quat", (0, 1, 2)),
        objects=("cube",),
        cameras={"front": PROJECTION.ravel()},
    )


def test_round_trip_through_json() -> None:
    spec = make_spec()
    d = json.loads(json.dumps(spec.to_dict()))
    back = StateSpec.from_dict(d)
    assert back == spec
    assert back.to_dict() == d
    assert back.end_effector == EndEffector("ee_pos", "ee_quat", (0, 1, 2))
    np.testing.assert_array_equal(back.projection("front"), PROJECTION)
    flat = StateSpec.flat(("a", "b"))
    assert StateSpec.from_dict(flat.to_dict()) == flat
    assert flat.to_dict()["end_effector"] is None and flat.projection() is None


def test_slot_lookups_and_dim_names() -> None:
    spec = make_spec()
    assert spec.dim == 3 + 4 + 1 + 3 + 1 + 2 + 5
    assert spec.slot("ee_pos") == slice(0, 3)
    assert spec.slot("grip") == slice(7, 8)
    assert spec.position_slot("cube_pos") == slice(8, 11)
    assert spec.has("vel") and not spec.has("nope")
    state = np.arange(2 * spec.dim, dtype=np.float32).reshape(2, spec.dim)
    np.testing.assert_array_equal(spec.get(state, "zone_pos"), state[:, 12:14])
    assert spec.dim_names() == (
        *("ee_pos.x", "ee_pos.y", "ee_pos.z"),
        *("ee_quat.w", "ee_quat.x", "ee_quat.y", "ee_quat.z"),
        "grip",
        *("cube_pos.x", "cube_pos.y", "cube_pos.z"),
        "cube_present",
        *("zone_pos.x", "zone_pos.y"),
        *(f"vel.{i}" for i in range(5)),
    )
    np.testing.assert_array_equal(spec.projection(), PROJECTION)  # default: the first camera
    with pytest.raises(KeyError, match="unknown state slot 'nope'"):
        spec.slot("nope")
    with pytest.raises(KeyError, match="unknown camera 'wrist'"):
        spec.projection("wrist")
    spec.check_state(state)
    with pytest.raises(ValueError, match="has shape \\(2, 3\\); this state spec has 19 dims"):
        spec.check_state(state[:, :3])


def test_bad_slots_are_refused() -> None:
    with pytest.raises(ValueError, match="must be unique"):
        StateSpec((StateSlot("a", 1), StateSlot("a", 2)))
    with pytest.raises(ValueError, match="kind 'angle' not in"):
        StateSlot("a", 1, "angle")
    with pytest.raises(ValueError, match="a quaternion has 4 dims, not 3"):
        StateSlot("q", 3, "quaternion")
    with pytest.raises(ValueError, match="size 0"):
        StateSlot("a", 0)
    with pytest.raises(ValueError, match="no '.'"):
        StateSlot("a.b", 1)
    with pytest.raises(ValueError, match="at least one slot"):
        StateSpec(())


def test_roles_need_slots_of_the_right_kind() -> None:
    slots = (
        StateSlot("p", 3, "position", "m"),
        StateSlot("flat_pos", 2, "position", "m"),
        StateSlot("j", 3, "joint", "rad"),
        StateSlot("q", 4, "quaternion"),
    )
    with pytest.raises(ValueError, match="slot 'j' is 3-d joint, expected a 3-d position"):
        StateSpec(slots, end_effector=EndEffector("j"))
    with pytest.raises(ValueError, match="slot 'flat_pos' is 2-d position, expected a 3-d"):
        StateSpec(slots).position_slot("flat_pos")
    with pytest.raises(ValueError, match="slot 'p' is 3-d position, expected a quaternion"):
        StateSpec(slots, end_effector=EndEffector("p", orientation="p"))
    with pytest.raises(KeyError, match="unknown state slot 'missing'"):
        StateSpec(slots, end_effector=EndEffector("missing"))
    with pytest.raises(ValueError, match="object 'flat'"):
        StateSpec(slots, objects=("flat",))
    with pytest.raises(ValueError, match="names 3 channels"):
        EndEffector("p", action_delta=(0, 1))
    assert StateSpec(slots, end_effector=EndEffector("p", "q")).end_effector.orientation == "q"


def test_cameras_need_a_finite_3x4_projection() -> None:
    slots = (StateSlot("a", 1),)
    with pytest.raises(ValueError, match="camera 'front' needs a finite \\(3, 4\\)"):
        StateSpec(slots, cameras={"front": np.zeros(9)})
    with pytest.raises(ValueError, match="camera 'front' needs a finite"):
        StateSpec(slots, cameras={"front": np.full(12, np.nan)})


def test_from_dict_refuses_unknown_or_malformed_entries() -> None:
    d = make_spec().to_dict()
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        StateSpec.from_dict({**d, "colour": "red"})
    with pytest.raises(ValueError, match="no 'slots'"):
        StateSpec.from_dict({"objects": []})
    with pytest.raises(ValueError, match="unknown end_effector keys \\['frame'\\]"):
        StateSpec.from_dict({**d, "end_effector": {**d["end_effector"], "frame": "base"}})
    with pytest.raises(ValueError, match="a slot is \\[name, size, kind, unit\\]"):
        StateSpec.from_dict({**d, "slots": ["ee_pos"]})
    with pytest.raises(ValueError, match="a slot is"):
        StateSpec.from_dict({**d, "slots": [["a", 1, "joint", "m", "extra"]]})


def test_named_positions_are_the_end_effector_then_the_objects():
    from cosmos_env.sim.state_layout import slot, tabletop_state_spec

    spec = tabletop_state_spec()
    named = spec.named_positions()
    assert list(named) == ["gripper", "cube", "cylinder", "block"]
    assert named["cube"] == slot("cube_pos") and named["gripper"] == slot("gripper_pos")
    assert StateSpec.flat(["a", "b"]).named_positions() == {}
