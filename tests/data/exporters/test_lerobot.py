"""LeRobot v3.0 export: a schema validator that reads the files back with pyarrow and
imageio-ffmpeg and compares them with the store, plus LeRobot itself when installed."""

from __future__ import annotations

import json
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_helpers import INSTRUCTIONS, SIZE, action_spec, fill_store, make_episode

from cosmos_env.data import EpisodeStore, IncompleteStoreError, standard_features
from cosmos_env.data.exporters import ExportSummary, export_lerobot, lerobot_writers

VIDEO_KEY = "observation.images.front"
MAX_MEAN_ABS_ERROR = 8.0  # per frame, uint8 units: what the video codec may lose


def read_video(path: Path) -> np.ndarray:
    """All frames of an mp4: (N, H, W, 3) uint8."""
    frames = imageio_ffmpeg.read_frames(str(path))
    meta = next(frames)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in frames])


def read_columns(path: Path) -> dict[str, np.ndarray]:
    """A data file's columns as numpy arrays of the stored dtype: (N,) or (N, D)."""
    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            out[name] = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def validate_lerobot(dst: Path, store: EpisodeStore, actions: str = "physical") -> None:
    """Check every file of a LeRobot v3.0 export against the store it came from."""
    info = json.loads((dst / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"]) == (store.n_episodes, store.n_frames)
    assert info["fps"] == store.fps and info["robot_type"] == store.robot
    features = info["features"]
    assert features["observation.state"]["shape"] == [4]
    assert features["action"]["names"] == list(store.action_spec.names)
    video = features[VIDEO_KEY]
    assert video["dtype"] == "video" and video["shape"] == [SIZE, SIZE, 3]
    assert video["info"]["video.codec"] == "h264" and video["info"]["video.fps"] == store.fps

    tasks = pq.read_table(dst / "meta/tasks.parquet").to_pydict()
    task_of = dict(zip(tasks["task_index"], tasks["task"], strict=True))
    assert sorted(task_of) == list(range(info["total_tasks"]))
    assert set(task_of.values()) == set(INSTRUCTIONS)

    episodes = pq.read_table(dst / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [ep["episode_index"] for ep in episodes] == list(range(store.n_episodes))
    data_files, video_files, spans = set(), {}, {}
    for i, ep in enumerate(episodes):
        start, end = store.episode_bounds(i)
        assert (ep["dataset_from_index"], ep["dataset_to_index"], ep["length"]) == (
            start,
            end,
            end - start,
        )
        assert ep["tasks"] == [store.instruction(i)]
        data_path = dst / info["data_path"].format(
            chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
        )
        data_files.add(data_path)
        check_frames(read_columns(data_path), store, i, task_of, actions)
        video_path = dst / info["video_path"].format(
            video_key=VIDEO_KEY,
            chunk_index=ep[f"videos/{VIDEO_KEY}/chunk_index"],
            file_index=ep[f"videos/{VIDEO_KEY}/file_index"],
        )
        if video_path not in video_files:
            video_files[video_path] = read_video(video_path)
        spans.setdefault(video_path, []).append(check_video(video_files[video_path], ep, store, i))
    assert data_files == set(dst.glob("data/*/*.parquet"))  # nothing stray, nothing missing
    assert set(video_files) == set(dst.glob(f"videos/{VIDEO_KEY}/*/*.mp4"))
    assert sum(pq.read_metadata(p).num_rows for p in data_files) == store.n_frames
    for path, frames in video_files.items():  # each file holds its episodes back to back
        bounds = np.asarray(sorted(spans[path]))
        assert bounds[0, 0] == 0 and bounds[-1, 1] == len(frames)
        np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])
    check_stats(json.loads((dst / "meta/stats.json").read_text()), store, actions)


def check_frames(
    table: dict[str, np.ndarray], store: EpisodeStore, i: int, task_of: dict, actions: str
) -> None:
    """The rows of episode `i` in its data file equal the store's (actions transformed)."""
    rows = np.nonzero(table["episode_index"] == i)[0]
    start, end = store.episode_bounds(i)
    assert len(rows) == end - start and np.all(np.diff(rows) == 1)
    ep = store.load_episode(i)
    col = {k: v[rows] for k, v in table.items()}
    np.testing.assert_array_equal(col["index"], np.arange(start, end))
    np.testing.assert_array_equal(col["frame_index"], np.arange(end - start))
    np.testing.assert_allclose(col["timestamp"], np.arange(end - start) / store.fps, atol=1e-6)
    assert col["observation.state"].dtype == col["action"].dtype == np.float32
    assert col["next.done"].dtype == bool and col["index"].dtype == np.int64
    np.testing.assert_array_equal(col["observation.state"], ep["state"])
    expected = store.action_spec.scale(ep["action"]) if actions == "physical" else ep["action"]
    np.testing.assert_array_equal(col["action"], expected)
    np.testing.assert_array_equal(col["next.reward"][:-1], ep["reward"][1:])
    assert col["next.reward"][-1] == 0.0
    np.testing.assert_array_equal(col["next.done"], ep["is_last"])
    assert {task_of[t] for t in col["task_index"]} == {store.instruction(i)}


def check_video(frames: np.ndarray, ep: dict, store: EpisodeStore, i: int) -> tuple[int, int]:
    """The episode's frames, located by its from/to timestamps, match the store's rgb;
    returns the episode's [first, last) frame in its file."""
    first = round(ep[f"videos/{VIDEO_KEY}/from_timestamp"] * store.fps)
    last = round(ep[f"videos/{VIDEO_KEY}/to_timestamp"] * store.fps)
    rgb = store.load_episode(i, ["rgb"])["rgb"]
    assert last - first == len(rgb) and last <= len(frames)
    error = np.abs(frames[first:last].astype(np.float64) - rgb).mean(axis=(1, 2, 3))
    assert error.max() < MAX_MEAN_ABS_ERROR, error
    return first, last


def check_stats(stats: dict, store: EpisodeStore, actions: str) -> None:
    """stats.json holds the store's stats in LeRobot's shapes and the exported units."""
    np.testing.assert_allclose(stats["observation.state"]["mean"], store.stats["state"]["mean"])
    image = {k: np.asarray(v) for k, v in stats[VIDEO_KEY].items()}
    assert image["mean"].shape == (3, 1, 1) and 0 <= image["min"].min() <= image["max"].max() <= 1
    action = {k: np.asarray(v) for k, v in stats["action"].items()}
    src = store.stats["action"]
    if actions == "physical":
        np.testing.assert_allclose(action["min"], store.action_spec.scale(src["min"]))
        half = (np.asarray(store.action_spec.high) - store.action_spec.low) / 2
        np.testing.assert_allclose(action["std"], src["std"] * half)
    else:
        np.testing.assert_allclose(action["min"], src["min"])
    assert {"q01", "q99"} <= set(action)
    assert stats["next.reward"]["count"] == [store.n_frames]


@pytest.mark.parametrize(
    "layout",
    [
        {},  # one data file and one video for everything
        # a new file per episode, two files per chunk: episodes span files and chunks
        {"data_files_size_in_mb": 0, "video_files_size_in_mb": 0, "chunks_size": 2},
    ],
    ids=["single-file", "rolled"],
)
def test_export_matches_store(tiny_store, tmp_path: Path, layout: dict) -> None:
    store_path, _ = tiny_store
    dst = tmp_path / "lerobot"
    summary = export_lerobot(store_path, dst, **layout)
    assert isinstance(summary, ExportSummary)
    assert (summary.episodes, summary.frames) == (3, 16)
    assert "3 episodes, 16 frames" in str(summary)
    validate_lerobot(dst, EpisodeStore.open(store_path))
    assert not list(tmp_path.glob(".lerobot*"))  # the partial directory was renamed
    if layout:
        assert len(list(dst.glob("data/chunk-001/*.parquet"))) == 1


def test_normalized_actions_are_the_stored_ones(tiny_store, tmp_path: Path) -> None:
    store_path, _ = tiny_store
    export_lerobot(store_path, tmp_path / "lr", actions="normalized")
    validate_lerobot(tmp_path / "lr", EpisodeStore.open(store_path), actions="normalized")
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["cosmos_env"]["actions"] == "normalized"
    assert info["cosmos_env"]["action_spec"]["units"][0] == "m"


def test_odd_frame_size_uses_444(tmp_path: Path) -> None:
    fill_store(tmp_path / "odd.zarr", lengths=(3, 2), size=15)  # 4:2:0 needs even sizes
    export_lerobot(tmp_path / "odd.zarr", tmp_path / "lr")
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["features"][VIDEO_KEY]["info"]["video.pix_fmt"] == "yuv444p"
    frames = read_video(next((tmp_path / "lr").glob("videos/*/*/*.mp4")))
    assert frames.shape == (5, 15, 15, 3)


def test_existing_destination(tiny_store, tmp_path: Path) -> None:
    store_path, _ = tiny_store
    dst = tmp_path / "lr"
    export_lerobot(store_path, dst)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lerobot(store_path, dst)
    (dst / "marker").write_text("old export")
    export_lerobot(store_path, dst, overwrite=True)
    assert not (dst / "marker").exists() and (dst / "meta/info.json").exists()
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("not an export")
    with pytest.raises(FileExistsError, match="not an earlier export"):
        export_lerobot(store_path, other, overwrite=True)
    assert (other / "notes.txt").exists()


def test_interrupted_export_never_reads_complete(tiny_store, tmp_path: Path, monkeypatch):
    store_path, _ = tiny_store
    dst = tmp_path / "lr"
    calls = []
    real_add = lerobot_writers.RollingVideo.add

    def failing_add(self, frames):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed mid-export")
        return real_add(self, frames)

    monkeypatch.setattr(lerobot_writers.RollingVideo, "add", failing_add)
    with pytest.raises(KeyboardInterrupt):
        export_lerobot(store_path, dst)
    assert not dst.exists()
    assert not list(tmp_path.glob(".lr.partial*"))  # the failed run removed its own
    other_run = tmp_path / ".lr.partial-other"  # e.g. a killed or concurrent run's
    other_run.mkdir()
    monkeypatch.setattr(lerobot_writers.RollingVideo, "add", real_add)
    export_lerobot(store_path, dst)  # a re-run starts over
    validate_lerobot(dst, EpisodeStore.open(store_path))
    assert list(tmp_path.glob(".lr.partial*")) == [other_run]  # not this run's: left alone


def test_refuses_incomplete_store(tmp_path: Path) -> None:
    store = EpisodeStore.create(
        tmp_path / "s.zarr",
        features=standard_features(SIZE, SIZE, 4, 7),
        action_spec=action_spec(),
        fps=5.0,
        world="w",
    )
    store.append_episode(make_episode(0, 3))
    with pytest.raises(IncompleteStoreError):
        export_lerobot(tmp_path / "s.zarr", tmp_path / "lr")
    with pytest.raises(ValueError, match="actions"):
        export_lerobot(tmp_path / "s.zarr", tmp_path / "lr", actions="raw")


def test_lerobot_reads_export(tiny_store, tmp_path: Path) -> None:
    """LeRobot's own reader, when installed: frames, actions and tasks as exported."""
    lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")
    store_path, _ = tiny_store
    export_lerobot(store_path, tmp_path / "lr")
    store = EpisodeStore.open(store_path)
    dataset = lerobot_dataset.LeRobotDataset("cosmos-env/tiny", root=tmp_path / "lr")
    assert len(dataset) == store.n_frames and dataset.num_episodes == store.n_episodes
    rows = store.get_rows(0, store.n_frames)
    for idx in range(len(dataset)):
        item = dataset[idx]
        i = int(item["episode_index"])
        assert item["task"] == store.instruction(i)
        np.testing.assert_array_equal(item["observation.state"].numpy(), rows["state"][idx])
        expected = store.action_spec.scale(rows["action"][idx])
        np.testing.assert_array_equal(item["action"].numpy(), expected)
        frame = item[VIDEO_KEY].permute(1, 2, 0).numpy() * 255  # (3, H, W) in [0, 1]
        assert np.abs(frame - rows["rgb"][idx]).mean() < MAX_MEAN_ABS_ERROR
