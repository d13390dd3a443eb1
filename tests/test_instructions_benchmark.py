"""benchmarks/instructions.py on a tiny instruction release: every key the issue names, per
group and per instruction, in range; the right-object rule; the report files."""

import json

import numpy as np
import pytest
from benchmark_modules import load_benchmark

from cosmos_env.data.state_spec import StateSpec
from cosmos_env.sim.instructions import Instruction
from cosmos_env.sim.worlds import tabletop_world


@pytest.mark.parametrize(
    "release", ["tiny_instruct_world_model_dir", "tiny_action_free_instruct_dir"]
)
def test_instructions_benchmark_writes_every_metric(release, tmp_path, monkeypatch, request):
    """Both modes: (b) the expert's actions and the instruction, (a) the instruction alone."""
    bench = load_benchmark("instructions")
    out = tmp_path / "bench"
    checkpoint = request.getfixturevalue(release)
    argv = ["instructions.py", "--checkpoint", str(checkpoint), "--out", str(out)]
    argv += ["--episodes", "1", "--horizon", "2", "--instructions", "1", "--guidance", "1.5"]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    result = json.loads((out / "instructions.json").read_text())
    assert set(result["groups"]) == {"seen", "held_out"} and result["guidance"] == 1.5
    assert result["mode"] == ("b" if release == "tiny_instruct_world_model_dir" else "a")
    for group in result["groups"].values():
        assert group["instructions"] == 1
        for key in ("instruction_following", "expert"):
            assert 0.0 <= group[key] <= 1.0
        assert np.isfinite(group["psnr_mean"])
    assert len(result["per_instruction"]) == 2
    assert (out / "instructions.png").stat().st_size > 0
    assert "instruction_following" in (out / "instructions.md").read_text()


def test_right_object_is_the_named_object_moving_most():
    bench = load_benchmark("instructions")
    spec: StateSpec = tabletop_world("instruct", 3).state_spec
    states = np.zeros((2, 3, spec.dim))
    cyl, cube = spec.slot("cylinder_pos"), spec.slot("cube_pos")
    states[0, -1, cyl.start] = 0.1  # episode 0: the cylinder moves
    states[1, -1, cube.start] = 0.1  # episode 1: the cube moves
    put_cylinder = Instruction("put", "cylinder", "bowl")
    assert bench.right_object(put_cylinder, states, spec) == 0.5
    assert bench.right_object(Instruction("reach_left", "gripper", "zone"), states, spec) is None


def test_a_model_without_text_is_refused(tiny_world_model_dir, tmp_path, monkeypatch):
    bench = load_benchmark("instructions")
    argv = ["instructions.py", "--checkpoint", str(tiny_world_model_dir), "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="follows no instructions"):
        bench.main()
