"""Convert 1X world-model challenge data into the episode store.

Sources: github.com/1x-technologies/1xgpt and the Hugging Face datasets
``1x-technologies/worldmodel`` (tokens) and ``1x-technologies/worldmodel_raw_data`` (video).
``version="auto"`` picks the layout from the files present: ``v1.1`` (one directory of
MAGVIT2 tokens, segment ids and action arrays), ``v2.0`` (shards of Cosmos DV8x8x8 token
grids, one per 17 frames, with 25-d robot states) or ``raw`` (the same shards with mp4
video). ``datasets/onex/README.md`` is the format reference: every file, dtype and shape.

Episodes: each contiguous run of equal segment id, with the stable source id
``"{shard}:segment{id}:{start}"``, so an interrupted conversion resumes (see common.py).
Rows: ``state`` (25,) float32 in 1X's v2.0 layout (STATE_NAMES); ``action`` normalised to
[-1, 1] by the store's ActionSpec (out-of-range physical values clipped, with a warning in
the summary): 1X's absolute action arrays for v1.1, the joint-space delta
``state[t + 1] - state[t]`` for v2.0/raw, which ship no actions. v1.1/v2.0 rows carry the
foreign tokens (no ``rgb``; the attrs say cosmos-env cannot decode them); raw rows carry
``rgb`` decoded with OpenCV and resized with INTER_AREA. Reward 0, instruction "".

A shard whose files are missing or truncated is skipped with the reason (file, expected and
found bytes) and the others are converted; in v1.1 (a single shard) it raises
OneXFormatError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_env.data.converters.common import (
    ConversionSummary,
    SourceItem,
    convert_items,
)
from cosmos_env.data.converters.onex_files import (
    OneXFormatError,
    VideoReader,
    check_video,
    open_bin,
    open_columns,
    read_json,
    segment_states,
    skip,
    tokens_int32,
)
from cosmos_env.data.converters.onex_spec import (
    STATE_NAMES,
    STATE_SPEC,
    V11_ACTIONS,
    delta_action_spec,
    delta_actions,
    find_segments,
    normalise_actions,
    v11_action_spec,
)
from cosmos_env.data.spec import ActionSpec, FeatureSpec
from cosmos_env.data.store import EpisodeStore

__all__ = [
    "STATE_NAMES",
    "STATE_SPEC",
    "OneXFormatError",
    "convert_onex",
    "delta_action_spec",
    "delta_actions",
    "detect_version",
    "find_segments",
    "v11_action_spec",
]

WORLD, ROBOT = "onex_humanoid", "eve"
DEFAULT_HZ = 30.0  # 1X's dataset cards: frames "at 30hz"
CLIP_FRAMES = 17  # Cosmos DV8x8x8 (causal): 17 frames -> 3 latent frames of 32x32
COSMOS_GRID = (3, 32, 32)
VERSIONS = ("v1.1", "v2.0", "raw")
TOKEN_NOTES = {
    "tokens_magvit2": "MAGVIT2 image tokens from 1X's magvit2.ckpt (16x16 per 256x256 frame, "
    "vocab 2^18). cosmos-env has no MAGVIT2 decoder, so they cannot be decoded to frames here: "
    "decode them with 1X's 1xgpt code, or convert 1X's raw-video release for pixels.",
    "tokens_cosmos_dv8x8x8": "NVIDIA Cosmos-Tokenizer-DV8x8x8 tokens: one (3, 32, 32) grid per "
    "17-frame clip (3 causal latent frames), repeated on each row of the clip; cosmos_clip_frame "
    "is the row's position in its clip. cosmos-env's tokenizers are other models, so these "
    "cannot be decoded here: use NVIDIA's Cosmos tokenizer, or convert 1X's raw-video release.",
}


# ------------------------------------------------------------------------------- entry point
def convert_onex(
    src: str | Path, dst: str | Path, image_size: int = 64, version: str = "auto"
) -> ConversionSummary:
    """Convert the 1X dataset directory `src` (v1.1, v2.0 or raw; see the module docstring)
    into the episode store `dst`, resuming an interrupted conversion; return the summary.

    `image_size` is the side of the stored rgb frames (raw only). Raises OneXFormatError
    naming the file and the problem when the v1.1 files (or the layout) are unusable, and
    StoreError (from `convert_items`) when every shard was skipped.
    """
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"1X source {src} is not a directory")
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if version == "auto":
        version = detect_version(src)
    if version not in VERSIONS:
        raise ValueError(f"version must be 'auto' or one of {VERSIONS}, got {version!r}")
    plan = _plan_v11(src) if version == "v1.1" else _plan_shards(src, version, image_size)

    def create(path: Path) -> EpisodeStore:
        return EpisodeStore.create(
            path,
            features=plan.features,
            action_spec=plan.spec,
            fps=plan.fps,
            world=WORLD,
            camera={"name": "head", "description": "EVE's first-person head camera"},
            robot=ROBOT,
            attrs=plan.extra,
            state_spec=STATE_SPEC,
        )

    try:
        return convert_items(plan.items, dst, create, total=len(plan.items), desc=f"1X {version}")
    finally:
        plan.close()


def detect_version(src: Path) -> str:
    """The layout of `src`: "v1.1" (video.bin), "v2.0" (video_{i}.bin) or "raw" (.mp4)."""
    if (src / "video.bin").is_file():
        return "v1.1"
    for version, ext in (("v2.0", "bin"), ("raw", "mp4")):
        if video_indices(src, ext):
            return version
    raise OneXFormatError(
        f"{src}: no 1X world-model data found; expected video.bin + segment_ids.bin (v1.1), "
        "videos/video_{i}.bin (v2.0) or videos/video_{i}.mp4 (raw video)"
    )


@dataclass
class _Plan:
    """What `convert_onex` needs: the items and the schema of the store to create."""

    items: list[SourceItem]
    features: dict[str, FeatureSpec]
    spec: ActionSpec
    fps: float
    extra: dict[str, Any]
    close: Callable[[], None] = lambda: None


# ------------------------------------------------------------------------------------ v1.1
@dataclass
class _V11:
    """Memmaps of one v1.1 directory."""

    root: Path
    video: np.ndarray  # (N, s, s) uint32 (metadata token_dtype)
    actions: dict[str, np.ndarray]  # name -> (N, k) float32
    notes: list[str] = field(default_factory=list)


def _plan_v11(src: Path) -> _Plan:
    meta, notes = read_json(src / "metadata.json"), []
    n = meta.get("num_images")
    ids = np.asarray(open_bin(src / "segment_ids.bin", np.int32, (), n, notes))
    s = int(meta.get("s", 16))
    token_dtype = np.dtype(meta.get("token_dtype", "uint32"))
    video = open_bin(src / "video.bin", token_dtype, (s, s), len(ids), notes)
    actions = {
        name: open_columns(src / "actions" / f"{name}.bin", widths, len(ids))
        for name, widths in V11_ACTIONS
    }
    source = _V11(src, video, actions, notes)
    spec = v11_action_spec(actions["neck_desired"].shape[1])
    items = [
        SourceItem(f"v1.1:segment{sid}:{a}", partial(_load_v11, source, spec, a, b, k == 0))
        for k, (sid, a, b) in enumerate(find_segments(ids))
    ]
    features = _lowdim_features(spec)
    features["tokens_magvit2"] = FeatureSpec("tokens_magvit2", "int32", (s, s))
    extra = _extra("1x-worldmodel-v1.1", "tokens_magvit2", meta)
    return _Plan(items, features, spec, float(meta.get("hz", DEFAULT_HZ)), extra)


def _load_v11(
    src: _V11, spec: ActionSpec, a: int, b: int, first: bool
) -> tuple[dict[str, np.ndarray], str, list[str]]:
    parts = {
        name: segment_states(arr, a, b, src.root / "actions" / f"{name}.bin")
        for name, arr in src.actions.items()
    }
    state_parts = ("joint_pos", "l_hand_closure", "r_hand_closure", "driving_command")
    state = np.concatenate([parts[name] for name in state_parts], axis=1)
    physical = np.concatenate([parts[name] for name, _ in V11_ACTIONS], axis=1)
    action, warnings = normalise_actions(physical, spec)
    episode = {
        "tokens_magvit2": tokens_int32(src.video[a:b], src.root / "video.bin"),
        "state": state,
        "action": action,
        "reward": np.zeros(b - a, np.float32),
    }
    return episode, "", (src.notes if first else []) + warnings


# -------------------------------------------------------------------------- v2.0 and raw
@dataclass
class _Shard:
    """One v2.0/raw shard: its memmaps (None where unreadable) and why it is unusable."""

    name: str
    segment_ids: np.ndarray | None = None
    states: np.ndarray | None = None
    states_path: Path | None = None
    video: np.ndarray | None = None  # v2.0: (clips, 3, 32, 32) int32
    video_path: Path | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def shard_file(src: Path, subdir: str, name: str) -> Path:
    """``src/subdir/name`` (1X's train layout), else ``src/name`` when only that exists."""
    nested, flat = src / subdir / name, src / name
    return flat if flat.exists() and not nested.exists() else nested


def video_indices(src: Path, ext: str) -> set[int]:
    pattern = re.compile(rf"video_(\d+)\.{ext}")
    found = set()
    for folder in (src / "videos", src):
        if folder.is_dir():
            found |= {int(m[1]) for p in folder.iterdir() if (m := pattern.fullmatch(p.name))}
    return found


def _open_shard(src: Path, i: int, version: str) -> _Shard:
    """Open shard `i`'s files; any problem is recorded in ``error`` (the shard is skipped)."""
    shard = _Shard(f"shard{i}")
    try:
        meta = read_json(shard_file(src, "metadata", f"metadata_{i}.json"))
        n = meta.get("shard_num_frames")
        seg_path = shard_file(src, "segment_indices", f"segment_idx_{i}.bin")
        shard.segment_ids = np.asarray(open_bin(seg_path, np.int32, (), n, shard.notes))
        n = len(shard.segment_ids)
        shard.states_path = shard_file(src, "robot_states", f"states_{i}.bin")
        shard.states = open_bin(shard.states_path, np.float32, (25,), n, shard.notes)
        ext = "bin" if version == "v2.0" else "mp4"
        shard.video_path = shard_file(src, "videos", f"video_{i}.{ext}")
        if version == "v2.0":
            clips = -(-n // CLIP_FRAMES)
            shard.video = open_bin(shard.video_path, np.int32, COSMOS_GRID, clips, shard.notes)
        else:
            check_video(shard.video_path, n, seg_path)
    except OneXFormatError as e:
        shard.error = str(e)
    return shard


def _plan_shards(src: Path, version: str, image_size: int) -> _Plan:
    meta = read_json(src / "metadata.json")
    indices = video_indices(src, "bin" if version == "v2.0" else "mp4")
    if isinstance(meta.get("num_shards"), int):
        indices |= set(range(meta["num_shards"]))  # a missing shard is listed as skipped
    spec = delta_action_spec()
    reader = VideoReader(image_size)
    items = []
    for i in sorted(indices):
        shard = _open_shard(src, i, version)
        load = partial(_load_v20, spec) if version == "v2.0" else partial(_load_raw, spec, reader)
        items += _shard_items(shard, load)
    features = _lowdim_features(spec)
    if version == "v2.0":
        token = "tokens_cosmos_dv8x8x8"
        features[token] = FeatureSpec(token, "int32", COSMOS_GRID)
        features["cosmos_clip_frame"] = FeatureSpec("cosmos_clip_frame", "int32", ())
        extra = _extra("1x-worldmodel-v2.0", token, meta)
    else:
        features["rgb"] = FeatureSpec("rgb", "uint8", (image_size, image_size, 3))
        extra = _extra("1x-worldmodel-v2.0-raw", None, meta)
    return _Plan(items, features, spec, float(meta.get("hz", DEFAULT_HZ)), extra, reader.close)


def _shard_items(shard: _Shard, load: Callable[..., Any]) -> list[SourceItem]:
    if shard.segment_ids is None:  # segments unknown: the whole shard is one skipped item
        return [SourceItem(f"{shard.name}:*", skip(shard.error or "unreadable"))]
    items = []
    for k, (sid, a, b) in enumerate(find_segments(shard.segment_ids)):
        fn = skip(shard.error) if shard.error else partial(load, shard, a, b, k == 0)
        items.append(SourceItem(f"{shard.name}:segment{sid}:{a}", fn))
    return items


def _shard_rows(
    spec: ActionSpec, shard: _Shard, a: int, b: int, first: bool
) -> tuple[dict[str, np.ndarray], list[str]]:
    """state, action (normalised deltas), reward of rows [a, b), and the warnings."""
    states = segment_states(shard.states, a, b, shard.states_path)
    action, warnings = normalise_actions(delta_actions(states), spec)
    rows = {"state": states, "action": action, "reward": np.zeros(b - a, np.float32)}
    return rows, (shard.notes if first else []) + warnings


def _load_v20(
    spec: ActionSpec, shard: _Shard, a: int, b: int, first: bool
) -> tuple[dict[str, np.ndarray], str, list[str]]:
    rows, warnings = _shard_rows(spec, shard, a, b, first)
    clip = np.arange(a, b) // CLIP_FRAMES  # the clip that holds each row
    grids = tokens_int32(shard.video[clip[0] : clip[-1] + 1], shard.video_path)
    rows["tokens_cosmos_dv8x8x8"] = grids[clip - clip[0]]  # (T, 3, 32, 32)
    rows["cosmos_clip_frame"] = (np.arange(a, b) % CLIP_FRAMES).astype(np.int32)
    return rows, "", warnings


def _load_raw(
    spec: ActionSpec, reader: VideoReader, shard: _Shard, a: int, b: int, first: bool
) -> tuple[dict[str, np.ndarray], str, list[str]]:
    rows, warnings = _shard_rows(spec, shard, a, b, first)
    rows["rgb"] = reader.read(shard.video_path, a, b)
    return rows, "", warnings


# ------------------------------------------------------------------------------ store schema
def _lowdim_features(spec: ActionSpec) -> dict[str, FeatureSpec]:
    """state (25,), action (A,), reward () float32: the part every 1X store shares."""
    return {
        "state": FeatureSpec("state", "float32", (len(STATE_NAMES),), STATE_NAMES),
        "action": FeatureSpec("action", "float32", (spec.dim,), spec.names),
        "reward": FeatureSpec("reward", "float32", ()),
    }


def _extra(source_format: str, token: str | None, meta: dict[str, Any]) -> dict[str, Any]:
    """The store's free-form attrs: provenance, the action derivation and the token note."""
    actions = (
        "1X's stored action arrays, concatenated: joint_pos, driving_command, neck_desired, "
        "l_hand_closure, r_hand_closure (absolute)"
        if source_format.endswith("v1.1")
        else "action[t] = state[t+1] - state[t] within the episode; zero on the last row"
    )
    actions += "; physical values outside the action spec's range are clipped"
    extra: dict[str, Any] = {"source_format": source_format, "source_metadata": meta}
    extra["actions"] = actions
    if token is not None:
        extra["tokens"] = {"name": token, "decodable": False, "note": TOKEN_NOTES[token]}
    return extra
