"""Reading raw videos and what is known about them: sidecars, LeRobot exports, bad files."""

import json

import imageio.v2 as imageio
import numpy as np
import pytest

from cosmos_env.curate.sources import find_videos
from cosmos_env.curate.video import VideoError, VideoSource, read_video


def write_video(path, frames, fps=10):
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)


def frames(n=12, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_finds_videos_in_order_with_their_sidecars(tmp_path):
    (tmp_path / "b").mkdir()
    write_video(tmp_path / "b" / "one.mp4", frames())
    write_video(tmp_path / "a.mp4", frames())
    (tmp_path / "a.json").write_text(json.dumps({"instruction": "push the cube", "fps": 5}))
    (tmp_path / "notes.txt").write_text("not a video")
    sources = find_videos(tmp_path)
    assert [s.video_id for s in sources] == ["a.mp4", "b/one.mp4"]
    assert sources[0].metadata == {"instruction": "push the cube", "fps": 5}
    assert sources[1].metadata == {}
    decoded, fps = read_video(sources[0].path)
    assert decoded.shape == (12, 32, 32, 3) and decoded.dtype == np.uint8 and fps == 10


def test_segment_instructions_and_actions():
    meta = {
        "instruction": "whole",
        "segments": [
            {"start": 0, "end": 10, "instruction": "first"},
            {"start": 10, "end": 30, "instruction": "second"},
        ],
        "actions": np.arange(60, dtype=float).reshape(30, 2).tolist(),
    }
    source = VideoSource(None, "v.mp4", meta)
    assert source.instruction_at(0, 8) == "first"
    assert source.instruction_at(6, 20) == "second"  # the segment covering most of it
    assert source.instruction_at(40, 50) == "whole"
    assert source.actions(2, 4).tolist() == [[4, 5], [6, 7]]


def test_bad_sidecar_and_bad_source_name_the_problem(tmp_path):
    write_video(tmp_path / "a.mp4", frames())
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ValueError, match="a.json is not valid JSON"):
        find_videos(tmp_path)
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        find_videos(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        find_videos(tmp_path / "missing")


def test_corrupt_and_truncated_videos_are_refused(tmp_path):
    write_video(tmp_path / "ok.mp4", frames(30))
    data = (tmp_path / "ok.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.webm").write_bytes(b"junk" * 100)
    for name in ("cut.mp4", "junk.webm"):
        with pytest.raises(VideoError, match=name):
            read_video(tmp_path / name)


def test_a_lerobot_export_is_read_with_its_episodes_as_segments(tmp_path):
    from cosmos_env.data import EpisodeStore, standard_features
    from cosmos_env.data.exporters.lerobot import export_lerobot
    from cosmos_env.data.spec import ActionSpec

    spec = ActionSpec(("a",), ("",), (-1.0,), (1.0,))
    store = EpisodeStore.create(
        tmp_path / "s.zarr",
        features=standard_features(32, 32, 1, 1),
        action_spec=spec,
        fps=10,
        world="test",
    )
    for i, n in enumerate((12, 9)):
        ep = {
            "rgb": frames(n, seed=i),
            "state": np.zeros((n, 1), np.float32),
            "action": np.zeros((n, 1), np.float32),
            "reward": np.zeros(n, np.float32),
        }
        store.append_episode(ep, f"task {i}", f"ep{i}")
    store.finalize()
    export_lerobot(tmp_path / "s.zarr", tmp_path / "lerobot", guard=False)
    sources = find_videos(tmp_path / "lerobot")
    assert len(sources) == 1
    segments = sources[0].metadata["segments"]
    assert [(s["start"], s["end"], s["instruction"]) for s in segments] == [
        (0, 12, "task 0"),
        (12, 21, "task 1"),
    ]
    assert sources[0].instruction_at(13, 20) == "task 1"
    assert len(read_video(sources[0].path)[0]) == 21


def test_a_onex_raw_set_is_read_with_its_segments_as_boundaries(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "data" / "converters" / "onex_fixtures.py"
    spec = importlib.util.spec_from_file_location("onex_fixtures_for_curate", path)
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    fixtures.write_raw(tmp_path)
    sources = find_videos(tmp_path)
    assert [s.video_id for s in sources] == ["videos/video_0.mp4", "videos/video_1.mp4"]
    first = sources[0]
    assert [(s["start"], s["end"]) for s in first.metadata["segments"]] == [(0, 6), (6, 13)]
    assert first.boundaries() == [6] and first.metadata["fps"] == 30
    assert sources[1].boundaries() == []
    assert len(read_video(first.path)[0]) == 13
