"""compare on an instruction model: each episode's instruction comes from its first state,
guidance is recorded and changes the prediction, and a model that reads instructions
without a world to name them is refused."""

import json

import numpy as np
import pytest

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.eval.compare import compare, predict, world_of
from cosmos_env.eval.simulate import simulate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setting(tiny_instruct_world_model_dir):
    wm = load_world_model(tiny_instruct_world_model_dir)
    world = world_of(wm)
    truth = simulate(world, "scripted", 0.3, 2, 3, 9999, wm.image_size)
    return wm, world, truth


def test_compare_follows_each_episodes_instruction_with_guidance(setting):
    wm, world, truth = setting
    result, pred = compare(wm, truth, 0, "euler", 1, world=world, guidance=2.0)
    assert result["guidance"] == 2.0 and np.isfinite(result["summary"]["psnr_h1"])
    plain = predict(wm, truth, 0, "euler", 1, world=world)
    assert not np.array_equal(plain.frames, pred.frames)


def test_an_instruction_model_needs_a_world_that_names_instructions(setting):
    wm, _, truth = setting
    with pytest.raises(ValueError, match="follows instructions, and its world"):
        predict(wm, truth, 0, "euler", 1, world=None)


def test_imagine_writes_the_instruction_carried_out_in_both_worlds(
    tiny_instruct_world_model_dir, tmp_path, capsys
):
    from cosmos_env.__main__ import main

    text = "put the red cube in the yellow bowl"
    out = tmp_path / "imagine"
    args = ["imagine", f"checkpoint={tiny_instruct_world_model_dir}", f"instruction={text}"]
    assert main([*args, "horizon=3", "guidance=2.0", f"out={out}"]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["config"]["instruction"] == text and result["guidance"] == 2.0
    assert result["config"]["episodes"] == 1 and result["config"]["noise"] == 0.0
    for name in ("side_by_side.mp4", "contact_sheet.png", "compare.md"):
        assert (out / name).stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_imagine_refuses_before_anything_runs(tiny_instruct_world_model_dir, tmp_path):
    from cosmos_env.__main__ import main
    from cosmos_env.guardrails.text import TextRefused

    base = ["imagine", f"checkpoint={tiny_instruct_world_model_dir}", f"out={tmp_path / 'x'}"]
    with pytest.raises(ValueError, match="imagine needs instruction"):
        main(base)
    with pytest.raises(TextRefused, match="nothing was generated"):
        main([*base, "instruction=kill the red cube"])
    assert not (tmp_path / "x").exists()


def test_imagine_runs_the_shipped_instruction_model_by_default(tmp_path):
    from cosmos_env.__main__ import main

    out = tmp_path / "imagine"
    text = "push the blue cylinder into the green zone"
    assert main(["imagine", f"instruction={text}", "horizon=2", f"out={out}"]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["config"]["checkpoint"] == "diffusion-instruct"
    assert result["model"]["world"] == "tabletop-instruct"
