import json

import imageio.v2 as imageio
import pytest

from cosmos_env.__main__ import main
from cosmos_env.checkpoint import CheckpointError


def test_demo_writes_video_sheet_plot_tables_and_comparison(tmp_path, capsys, tiny_world_model_dir):
    out = tmp_path / "demo"
    args = [
        "demo",
        f"out={out}",
        "episodes=1",
        "tasks=[push]",
        f"checkpoint={tiny_world_model_dir}",
    ]
    assert main(args + ["compare_episodes=2", "compare_horizon=3"]) == 0
    for name in ("tabletop_expert.mp4", "contact_sheet.png", "rewards.png", "metrics.md"):
        assert (out / name).stat().st_size > 1000 or name == "metrics.md"
    frames = imageio.mimread(out / "tabletop_expert.mp4")
    assert len(frames) == 51 and frames[0].shape == (256, 256, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["push"]["success_rate"] == 1.0
    compare = json.loads((out / "compare" / "compare.json").read_text())
    assert compare["config"]["episodes"] == 2 and len(compare["per_horizon"]["psnr"]) == 3
    for name in ("side_by_side.mp4", "fidelity_over_horizon.png", "contact_sheet.png"):
        assert (out / "compare" / name).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| push | 1 |" in printed
    # The comparison table comes after the expert's metrics table.
    assert printed.index("| push | 1 |") < printed.index("| h | WM PSNR")


def test_demo_without_world_model_says_how_to_train_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(CheckpointError, match="train-dynamics|retrain") as error:
        main(["demo", f"out={tmp_path / 'demo'}", f"checkpoint={missing}"])
    assert "python -m cosmos_env retrain" in str(error.value)
    assert not (tmp_path / "demo").exists()  # failed before doing any work


def test_cli_usage_and_unknown_command(capsys):
    assert main([]) == 0
    assert "generate" in capsys.readouterr().out
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err
