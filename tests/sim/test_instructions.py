"""The instructed tabletop: instruction templates over tasks x objects x goals, their
success tests, the held-out split, the instruction carried in the state (and named by the
StateSpec), the experts that carry out each instruction in MuJoCo, and the env."""

import gymnasium as gym
import numpy as np
import pytest

import cosmos_env  # noqa: F401  (registers the envs)
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.experts import ScriptedExpert, instruction_expert
from cosmos_env.sim.instructed_env import InstructedTabletopEnv
from cosmos_env.sim.instructions import (
    HELD_OUT,
    INSTRUCTED_DIM,
    Instruction,
    all_instructions,
    decode_instruction,
    encode_instruction,
    instructed_reward,
    instructed_state_spec,
    instructed_success,
    parse_instruction,
    split_instructions,
)

PHRASES = {"cube": "red cube", "cylinder": "blue cylinder", "block": "purple block"}


def test_templates_read_as_instructions():
    assert len(all_instructions()) == 3 + 6 + 2 * 5  # push, put, reach left / right
    texts = {i.key: i.text(PHRASES) for i in all_instructions()}
    assert texts["push/cube/zone"] == "push the red cube into the green zone"
    assert texts["put/cylinder/bowl"] == "put the blue cylinder in the yellow bowl"
    assert texts["put/block/zone"] == "put the purple block on the green zone"
    assert texts["reach_left/gripper/bowl"] == "move the gripper to the left of the yellow bowl"
    assert len(set(texts.values())) == len(texts)  # every text names one instruction


def test_parse_finds_every_instruction_and_names_the_problem_otherwise():
    for instruction in all_instructions():
        text = instruction.text(PHRASES)
        assert parse_instruction(f"  {text.upper()} ", PHRASES) == instruction
    with pytest.raises(ValueError, match="no instruction this tabletop knows.*push the red"):
        parse_instruction("juggle the red cube", PHRASES)


def test_invalid_triples_are_refused():
    with pytest.raises(ValueError, match="unknown instruction task 'throw'"):
        Instruction("throw", "cube", "zone")
    with pytest.raises(ValueError, match="push takes a goal in \\['zone'\\]"):
        Instruction("push", "cube", "bowl")  # a pushed object does not climb the rim
    with pytest.raises(ValueError, match="reach_left takes an object in \\['gripper'\\]"):
        Instruction("reach_left", "cube", "bowl")


def test_held_out_combinations_are_never_seen_but_their_parts_are():
    seen, held = split_instructions()
    assert {i.key for i in held} == {"/".join(t) for t in HELD_OUT}
    assert not set(seen) & set(held) and len(seen) + len(held) == len(all_instructions())
    for instruction in held:
        assert any(i.object == instruction.object for i in seen)
        assert any(i.goal == instruction.goal for i in seen)
    with pytest.raises(ValueError, match="its object is then never seen"):
        split_instructions([("push", "block", "zone"), ("put", "block", "bowl"),
                            ("put", "block", "zone")])  # fmt: skip


def _state(gripper=(0.0, 0.0, 0.1), cube=(0.1, 0.1, 0.02), zone=(0.1, 0.1), bowl=(-0.1, 0.0)):
    state = np.zeros(sl.STATE_DIM, np.float32)
    state[sl.slot("gripper_pos")] = gripper
    state[sl.slot("cube_pos")] = cube
    state[sl.slot("zone_pos")] = zone
    state[sl.slot("bowl_pos")] = bowl
    return state


def test_success_tests_follow_the_goal_and_the_camera_side():
    in_zone = _state()
    assert Instruction("push", "cube", "zone").success(in_zone)
    assert not Instruction("put", "cube", "bowl").success(in_zone)
    lifted = _state(cube=(0.1, 0.1, 0.2))
    assert not Instruction("put", "cube", "zone").success(lifted)  # held above: not on it
    left = _state(gripper=(-0.17, 0.0, 0.1))  # 7 cm to the bowl's left (-x on screen)
    assert Instruction("reach_left", "gripper", "bowl").success(left)
    assert not Instruction("reach_right", "gripper", "bowl").success(left)
    assert not Instruction("reach_left", "gripper", "bowl").success(_state(gripper=(-0.3, 0, 0.1)))


def test_the_state_carries_the_instruction_and_scores_vectorised():
    instructions = all_instructions()
    base = _state(gripper=(-0.17, 0.0, 0.1))
    states = np.stack([np.r_[base, encode_instruction(i)] for i in instructions])
    assert states.shape == (len(instructions), INSTRUCTED_DIM)
    for state, instruction in zip(states, instructions, strict=True):
        assert decode_instruction(state) == instruction
    expected = np.array([i.success(base) for i in instructions])
    np.testing.assert_array_equal(instructed_success(states), expected)
    rewards = np.array([i.dense_reward(base) for i in instructions])
    np.testing.assert_allclose(instructed_reward(states), rewards)
    with pytest.raises(ValueError, match="instructed states have 49 dims"):
        instructed_success(base)


def test_the_state_spec_names_the_instruction_slots():
    spec = instructed_state_spec()
    assert spec.dim == INSTRUCTED_DIM and spec.instruction["instruction_goal"][:2] == (
        "zone",
        "bowl",
    )
    assert StateSpec.from_dict(spec.to_dict()) == spec
    broken = spec.to_dict()
    broken["instruction"]["instruction_task"] = ["push"]  # 1 name for a 4-entry slot
    with pytest.raises(ValueError, match="instruction slot 'instruction_task'.*4-d flag"):
        StateSpec.from_dict(broken)


@pytest.fixture(scope="module")
def env():
    env = InstructedTabletopEnv(instructions="all", terminate_on_success=False)
    yield env
    env.close()


def test_the_expert_carries_out_every_instruction_in_mujoco(env):
    for k, instruction in enumerate(all_instructions()):
        text = instruction.text(env.phrases())
        _, info = env.reset(seed=100 + k, options={"instruction": text})
        act = instruction_expert(instruction)
        for _ in range(60):
            _, reward, _, _, info = env.step(act(info["state"]).astype(np.float32))
            if info["is_success"]:
                break
        assert info["is_success"], instruction.key
        assert reward == pytest.approx(float(instruction.dense_reward(info["state"])))


def test_reset_draws_from_its_split_and_the_state_names_it(env):
    held = InstructedTabletopEnv(instructions="held_out")
    drawn = {held.reset(seed=s)[1]["instruction"] for s in range(12)}
    assert drawn == {Instruction(*t).text(PHRASES) for t in HELD_OUT}
    with pytest.raises(ValueError, match="not among this env's instructions"):
        held.reset(seed=0, options={"instruction": "push the red cube into the green zone"})
    held.close()
    _, info = env.reset(seed=3)
    assert decode_instruction(info["state"]) == env.current
    assert info["instruction"] == env.instruction == env.current.text(PHRASES)
    expert = ScriptedExpert("instruct")
    action = expert.act(info["state"])
    np.testing.assert_allclose(action, instruction_expert(env.current)(info["state"]), atol=1e-6)


def test_two_objects_draw_only_instructions_that_name_them():
    small = InstructedTabletopEnv(instructions="all", n_objects=2)
    assert all("block" not in i.key for i in small.choices) and len(small.choices) == 2 + 4 + 2 * 4
    small.close()
    with pytest.raises(ValueError, match="instructions must be one of"):
        InstructedTabletopEnv(instructions="unseen")


def test_registered_env_runs_with_the_checkers():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("cosmos_env/Tabletop-Instruct-v0")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 60
    env.close()
