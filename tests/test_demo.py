import json

import imageio.v2 as imageio

from cosmos_env.__main__ import main


def test_demo_writes_video_sheet_plot_and_table(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", f"out={out}", "episodes=1", "tasks=[push]"]) == 0
    for name in ("tabletop_expert.mp4", "contact_sheet.png", "rewards.png", "metrics.md"):
        assert (out / name).stat().st_size > 1000 or name == "metrics.md"
    frames = imageio.mimread(out / "tabletop_expert.mp4")
    assert len(frames) == 51 and frames[0].shape == (256, 256, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["push"]["success_rate"] == 1.0
    assert "| push | 1 |" in capsys.readouterr().out


def test_cli_usage_and_unknown_command(capsys):
    assert main([]) == 0
    assert "generate" in capsys.readouterr().out
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err
