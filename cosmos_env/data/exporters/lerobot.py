"""Export an episode store to a LeRobot dataset, format v3.0 (lerobot >= 0.4).

Layout written under ``dst`` (the paths and columns LeRobot v3.0 reads)::

    meta/info.json       codebase_version "v3.0", robot_type, fps, totals, chunks_size, file
                         size limits, data_path/video_path templates, features (dtype, shape,
                         names; the video feature's codec, pix_fmt, fps, height, width, channels)
    meta/stats.json      per feature min/max/mean/std/count (+ q01/q99 for state and action);
                         the video feature per channel in [0, 1], shaped (3, 1, 1)
    meta/tasks.parquet   one row per distinct instruction: task (the pandas index), task_index
    meta/episodes/chunk-000/file-000.parquet
                         one row per episode: episode_index, tasks, length, dataset_from_index,
                         dataset_to_index, data/{chunk,file}_index,
                         videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp},
                         meta/episodes/{chunk,file}_index, stats/<feature>/<stat>
    data/chunk-XXX/file-XXX.parquet
                         one row per frame: observation.state, action, timestamp, frame_index,
                         episode_index, index, task_index, next.reward, next.done
    videos/observation.images.<camera>/chunk-XXX/file-XXX.mp4
                         several episodes' frames back to back; an episode starts at its
                         from_timestamp (seconds) in its file

Mapping from the store (rows as DESIGN.md's data contract defines them):

- Every store row becomes one frame, in store order: ``index`` is the store's global row.
- ``action`` is in the robot's physical units by default (``ActionSpec.scale`` of the stored
  [-1, 1] actions), as LeRobot policies and robots expect; ``actions="normalized"`` keeps
  [-1, 1]. ``info.json["cosmos_env"]["action_spec"]`` holds the mapping either way. The last
  frame of each episode keeps the store's padding action (``next.done`` is True there), and
  ``meta/stats.json`` describes the real actions only (the store's stats skip padding rows).
- ``next.reward[t]`` is the reward for the action taken at ``t``: the store's ``reward[t + 1]``
  (the store keeps the reward received on arriving at a row); 0 on the last frame.
- ``next.done`` is the store's ``is_last``; ``task_index`` indexes the episode's instruction.
- Extra store keys (beyond rgb, state, action, reward, is_first, is_last) are not exported;
  the summary names them.

Atomicity: everything is written under a hidden sibling ``.<name>.partial-XXXX`` of ``dst``
(this run's own) and renamed to ``dst`` at the end, so an interrupted export never reads as
complete. Re-running starts over in a new partial directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from cosmos_env.data.exporters.common import (
    ExportSummary,
    PathLike,
    check_destination,
    open_source,
    partial_directory,
    publish,
)
from cosmos_env.data.exporters.lerobot_stats import dataset_stats, episode_stats
from cosmos_env.data.exporters.lerobot_writers import (
    DATA_PATH,
    VIDEO_PATH,
    RollingParquet,
    RollingVideo,
    fps_value,
)
from cosmos_env.data.spec import REQUIRED_FEATURES
from cosmos_env.data.store import EpisodeStore
from cosmos_env.guardrails.faces import guard_frames

__all__ = ["CODEBASE_VERSION", "DATA_PATH", "VIDEO_PATH", "export_lerobot"]

CODEBASE_VERSION = "v3.0"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
_SCALAR = {"dtype": "float32", "shape": [1], "names": None}
_INDEX = {"dtype": "int64", "shape": [1], "names": None}


def export_lerobot(
    store_path: PathLike,
    dst: PathLike,
    *,
    repo_id: str | None = None,
    camera: str | None = None,
    actions: Literal["physical", "normalized"] = "physical",
    video_codec: str = "libx264",
    crf: int = 23,
    chunks_size: int = 1000,
    data_files_size_in_mb: int = 100,
    video_files_size_in_mb: int = 200,
    overwrite: bool = False,
    guard: bool = True,
) -> ExportSummary:
    """Write the complete store at `store_path` as a LeRobot v3.0 dataset at `dst`.

    `camera` names the video feature ``observation.images.<camera>`` (default: the store's
    camera name, else "main"); `video_codec` is an ffmpeg encoder, `crf` its quality (lower
    is better); a data or video file is closed and the next one started once it holds about
    `*_size_in_mb`, and a chunk directory holds at most `chunks_size` files. Refuses an
    existing `dst` unless ``overwrite=True``. Load the result with
    ``LeRobotDataset(repo_id, root=dst)``; `repo_id` only titles the dataset card. Faces in
    the frames are pixelated (`guardrails.faces`) unless ``guard=False``.
    """
    if actions not in ("physical", "normalized"):
        raise ValueError(f"actions must be 'physical' or 'normalized', got {actions!r}")
    if chunks_size < 1 or min(data_files_size_in_mb, video_files_size_in_mb) < 0:
        raise ValueError("need chunks_size >= 1 and file size limits >= 0")
    store, dst = open_source(store_path), Path(dst)
    check_destination(dst, overwrite, "meta/info.json")
    sizes = {
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
    }
    with partial_directory(dst.parent, dst.name) as tmp:
        video_key = f"observation.images.{_camera_name(store, camera)}"
        tasks = _task_indices(store)
        data = RollingParquet(tmp, chunks_size, data_files_size_in_mb)
        video = RollingVideo(
            tmp, video_key, store, video_codec, crf, chunks_size, video_files_size_in_mb
        )
        rows = []
        try:
            for i in tqdm(range(store.n_episodes), desc="export lerobot", unit="episode"):
                rows.append(_export_episode(store, i, tasks, actions, data, video, guard))
        except BaseException:
            video.close()  # stop ffmpeg; the partial directory goes with this run
            raise
        data.close()
        video.close()
        _write_meta(tmp, store, rows, tasks, video, actions, sizes)
        _write_card(tmp, store, repo_id or dst.name)
        publish(tmp, dst)
    return _summary(store, dst, video, actions)


# ------------------------------------------------------------------------------- episodes
def _export_episode(
    store: EpisodeStore,
    i: int,
    tasks: dict[str, int],
    actions: str,
    data: RollingParquet,
    video: RollingVideo,
    guard: bool = True,
) -> dict[str, Any]:
    """Write episode `i`'s frames and video; return its row of the episodes table."""
    ep = store.load_episode(i, ["rgb", "state", "action", "reward", "is_last"])
    start, end = store.episode_bounds(i)
    instruction = store.instruction(i)
    columns = _frame_columns(store, ep, i, start, tasks[instruction], actions)
    row: dict[str, Any] = {"episode_index": i, "tasks": [instruction], "length": end - start}
    row |= {"dataset_from_index": start, "dataset_to_index": end}
    row |= data.add(_to_table(columns))
    ep["rgb"] = guard_frames(ep["rgb"], guard)  # frames leaving the system
    row |= video.add(ep["rgb"])
    row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
    row |= episode_stats(columns, video.key, ep["rgb"])
    return row


def _frame_columns(
    store: EpisodeStore, ep: dict[str, np.ndarray], i: int, start: int, task: int, actions: str
) -> dict[str, np.ndarray]:
    """The data-file columns of one episode of T frames: name -> (T,) or (T, D) array."""
    n = len(ep["is_last"])
    reward = np.zeros(n, np.float32)
    reward[:-1] = ep["reward"][1:]  # reward for the action at t = reward on arriving at t + 1
    action = ep["action"]
    if actions == "physical":
        action = store.action_spec.scale(action).astype(np.float32)
    return {
        "observation.state": ep["state"],
        "action": action,
        "timestamp": (np.arange(n) / store.fps).astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, i, np.int64),
        "index": np.arange(start, start + n, dtype=np.int64),
        "task_index": np.full(n, task, np.int64),
        "next.reward": reward,
        "next.done": ep["is_last"].astype(bool),
    }


def _to_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Arrow table of the frame columns: (T, D) arrays become fixed-size lists of D (what
    Hugging Face datasets writes for a ``Sequence(length=D)`` feature)."""
    arrays = {}
    for name, x in columns.items():
        if x.ndim == 2:
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
        else:
            arrays[name] = pa.array(x)
    return pa.table(arrays)


# ------------------------------------------------------------------------------- metadata
def _write_meta(
    root: Path,
    store: EpisodeStore,
    rows: list[dict[str, Any]],
    tasks: dict[str, int],
    video: RollingVideo,
    actions: str,
    sizes: dict[str, int],
) -> None:
    """info.json, stats.json, tasks.parquet and the episodes table."""
    (root / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / EPISODES_PATH, compression="snappy")
    _write_tasks(root / "meta/tasks.parquet", tasks)
    stats = dataset_stats(store, rows, video.key, actions)
    _write_json(root / "meta/stats.json", stats)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": store.robot or None,
        "total_episodes": store.n_episodes,
        "total_frames": store.n_frames,
        "total_tasks": len(tasks),
        **sizes,
        "fps": fps_value(store.fps),
        "splits": {"train": f"0:{store.n_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": _features(store, video),
        "cosmos_env": {
            "source_store": str(store.path),
            "world": store.world,
            "camera": store.camera,
            "actions": actions,
            "action_spec": store.action_spec.to_dict(),
        },
    }
    _write_json(root / "meta/info.json", info)


def _features(store: EpisodeStore, video: RollingVideo) -> dict[str, dict[str, Any]]:
    """info.json features: name -> {dtype, shape, names(, info)}."""
    state = store.features["state"]
    return {
        video.key: {
            "dtype": "video",
            "shape": [video.height, video.width, 3],
            "names": ["height", "width", "channels"],
            "info": video.info(),
        },
        "observation.state": {
            "dtype": "float32",
            "shape": list(state.shape),
            "names": None if state.names is None else list(state.names),
        },
        "action": {
            "dtype": "float32",
            "shape": [store.action_spec.dim],
            "names": list(store.action_spec.names),
        },
        "next.reward": dict(_SCALAR),
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "timestamp": dict(_SCALAR),
        **{name: dict(_INDEX) for name in ("frame_index", "episode_index", "index", "task_index")},
    }


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """tasks.parquet: columns task, task_index; pandas metadata makes `task` the index (what
    LeRobot's ``pd.read_parquet`` expects) while other readers see a plain column."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {"name": "task", "field_name": "task", "pandas_type": "unicode"}
            | {"numpy_type": "object", "metadata": None},
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64"}
            | {"numpy_type": "int64", "metadata": None},
        ],
    }
    table = pa.table(
        {
            "task": pa.array(list(tasks), pa.string()),
            "task_index": pa.array(list(tasks.values()), pa.int64()),
        }
    ).replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    pq.write_table(table, path)


def _write_card(root: Path, store: EpisodeStore, title: str) -> None:
    """A minimal Hugging Face dataset card, so the folder can be pushed to the Hub as is."""
    card = (
        "---\ntags:\n- LeRobot\n- cosmos-env\nconfigs:\n- config_name: default\n"
        "  data_files: data/*/*.parquet\n---\n\n"
        f"# {title}\n\nLeRobot v3.0 export of a cosmos-env episode store "
        f"(world {store.world!r}, robot {store.robot!r}, {store.fps:g} fps): "
        f"{store.n_episodes} episodes, {store.n_frames} frames. See meta/info.json.\n"
    )
    (root / "README.md").write_text(card, encoding="utf-8")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------- helpers
def _task_indices(store: EpisodeStore) -> dict[str, int]:
    """Distinct instructions in order of first appearance -> task_index."""
    tasks: dict[str, int] = {}
    for i in range(store.n_episodes):
        tasks.setdefault(store.instruction(i), len(tasks))
    return tasks


def _camera_name(store: EpisodeStore, camera: str | None) -> str:
    name = camera or str(store.camera.get("name") or "main")
    if not name or "/" in name:
        raise ValueError(f"camera name {name!r} must be non-empty and free of '/'")
    return name


def _summary(store: EpisodeStore, dst: Path, video: RollingVideo, actions: str) -> ExportSummary:
    extra = sorted(set(store.features) - set(REQUIRED_FEATURES))
    notes = [
        f"actions exported in {actions} units; the last frame of each episode keeps the "
        "store's padding action (next.done=True)",
        f"video {video.key}: {video.codec} {video.pix_fmt}, {video.cursor.chunk + 1} chunk(s)",
    ]
    if extra:
        notes.append(f"store keys not exported: {extra}")
    if not float(store.fps).is_integer():
        notes.append(f"fps {store.fps} is fractional; LeRobot expects an integer fps")
    return ExportSummary(str(dst), store.n_episodes, store.n_frames, notes)
