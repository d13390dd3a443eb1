"""``python -m cosmos_env convert|export``: the command lines reach the converters and
exporters, print a closing summary, and refuse unknown formats with the usage."""

from __future__ import annotations

import json

import minari
import pytest
from bridge_fixtures import write_raw_dataset

from cosmos_env.__main__ import main
from cosmos_env.data import EpisodeStore


def test_convert_bridge_then_export_lerobot_and_minari(tmp_path, monkeypatch, capsys):
    trajectories = write_raw_dataset(tmp_path / "bridge" / "raw" / "traj_group0")
    store = tmp_path / "bridge.zarr"
    args = ["convert", "bridge", str(tmp_path / "bridge"), str(store), "--image-size", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{len(trajectories)} episodes" in out and "0 skipped" in out
    assert EpisodeStore.open(store).features["rgb"].shape == (16, 16, 3)

    assert main(["export", "lerobot", str(store), str(tmp_path / "lerobot")]) == 0
    info = json.loads((tmp_path / "lerobot" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == len(trajectories)

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert main(["export", "minari", str(store), "cosmos_env/bridge/cli-v0"]) == 0
    assert minari.load_dataset("cosmos_env/bridge/cli-v0").total_episodes == len(trajectories)


def test_unknown_format_exits_with_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "rlds", "a", "b"])
    assert exit_info.value.code == 2 and "invalid choice: 'rlds'" in capsys.readouterr().err
