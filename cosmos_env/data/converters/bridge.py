"""BridgeData V2 (RAIL Berkeley's WidowX 250 demonstrations) into the episode store.

Two source layouts are read (``layout="auto"`` picks whichever `src` holds):

- raw: ``.../<date>/raw/traj_group*/traj*/`` directories (found recursively under `src`, or
  `src` is one) holding ``images0/im_{t}.jpg`` (``images1``... for the other cameras),
  ``obs_dict.pkl`` (a dict whose ``full_state`` is (T, 7): x, y, z, roll, pitch, yaw,
  gripper), ``policy_out.pkl`` (T - 1 actions: a list of dicts with key ``actions`` or a
  list of (7,) arrays; T actions are accepted and the last is dropped) and ``lang.txt``
  (the instruction on its first line; lines holding "confidence" are annotation scores).
  As in Bridge's own ``bridgedata_raw_to_numpy.py``, recordings dated before 2021-07-23
  have a one-frame camera delay: their first frame and state and their last action are
  dropped, so that ``action[t]`` is paired with the frame the robot actually saw.
- numpy: ``out.npy`` files (found recursively) as that script writes them: an object array
  of trajectory dicts with ``observations`` (per-step dicts with ``images0`` (H, W, 3) uint8
  RGB and ``state`` (7,)), ``actions`` ((7,) arrays), ``language`` (a string or list of
  strings) and, usually, ``next_observations``, whose last entry is then appended as the
  final frame (the script stores T - 1 observation/action pairs of a T-frame trajectory).

Frames are centre-cropped to a square (a 640x480 camera frame loses 80 columns on each
side) and resized to `image_size` with ``cv2.INTER_AREA``. Actions are stored as
``BRIDGE_V2_ACTION_SPEC.unscale(physical)`` in [-1, 1]; physical values beyond the spec's range
are clipped and reported as a warning of that trajectory. A trajectory that cannot be
converted (missing or refused pickle, corrupt JPEG, frame/state/action counts that do not
match) is skipped with the reason; the rest go on. Pickles are read with the restricted
unpickler of `safe_pickle` only.

Memory: trajectories are produced one at a time (raw), or one ``out.npy`` file at a time
(numpy: a pickled object array cannot be read in parts; each converted trajectory is
released from it straight away).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from cosmos_env.data.converters.common import (
    ConversionSummary,
    SkipItem,
    SourceItem,
    convert_items,
)
from cosmos_env.data.converters.safe_pickle import (
    UnsafePickleError,
    npy_shape,
    safe_load_npy,
    safe_load_pickle,
)
from cosmos_env.data.spec import ActionSpec, standard_features
from cosmos_env.data.state_spec import EndEffector, StateSlot, StateSpec
from cosmos_env.data.store import EpisodeStore

__all__ = [
    "BRIDGE_V2_ACTION_SPEC",
    "BRIDGE_FPS",
    "BRIDGE_STATE_NAMES",
    "BRIDGE_STATE_SPEC",
    "convert_bridge",
    "load_numpy_trajectory",
    "load_raw_trajectory",
    "read_instruction",
    "square_resize",
]

# Bridge's 7-d end-effector delta per 5 Hz step; the gripper entry is absolute (0 closed,
# 1 open). +-5 cm and +-0.25 rad hold Bridge's 1st-99th percentiles (about +-4 cm and
# +-0.2 rad) with room to spare; the rare larger jumps are clipped (and reported).
BRIDGE_V2_ACTION_SPEC = ActionSpec(
    names=("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"),
    units=("m", "m", "m", "rad", "rad", "rad", "open_fraction"),
    low=(-0.05, -0.05, -0.05, -0.25, -0.25, -0.25, 0.0),
    high=(0.05, 0.05, 0.05, 0.25, 0.25, 0.25, 1.0),
)
BRIDGE_STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
# The 7-d state as stored (``full_state``, or the numpy layout's ``state``): the WidowX's
# end-effector position and roll/pitch/yaw in the robot's base frame, and the gripper.
# dx, dy, dz (the first three actions) are deltas of that same position in that same
# frame, so ee_pos is the end effector they move. The Euler angles are not a quaternion,
# so there is no orientation role; the gripper's scale is Bridge's own, so it has no unit.
BRIDGE_STATE_SPEC = StateSpec(
    (
        StateSlot("ee_pos", 3, "position", "m"),
        StateSlot("ee_rpy", 3, "other", "rad"),
        StateSlot("gripper", 1, "joint", ""),
    ),
    end_effector=EndEffector("ee_pos", "", (0, 1, 2)),
)
BRIDGE_FPS = 5.0
LATENCY_FIXED_ON = datetime(2021, 7, 23)  # earlier recordings have a one-frame camera delay
_DIM = 7
_TRAJ_DIR = re.compile(r"traj\d+")
_FRAME_FILE = re.compile(r"im_(\d+)\.jpg")

Episode = tuple[dict[str, np.ndarray], str, list[str]]


def convert_bridge(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    image_size: int = 64,
    camera: str = "images0",
    layout: Literal["auto", "raw", "numpy"] = "auto",
) -> ConversionSummary:
    """Convert every Bridge V2 trajectory under `src` into the episode store at `dst`.

    Writes rgb (T, image_size, image_size, 3) uint8, state (T, 7) float32 (``full_state``),
    action (T, 7) float32 in [-1, 1] (last row: zero padding), reward (T,) zeros. An existing
    store at `dst` is resumed or extended (source ids already there are not converted
    again). Returns the summary (episodes, frames, skipped trajectories with reasons,
    warnings). Raises FileNotFoundError when `src` holds no Bridge data.
    """
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"Bridge source {src} does not exist")
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if not re.fullmatch(r"images\d+", camera):
        raise ValueError(f"camera must be images0, images1, ..., got {camera!r}")
    traj_dirs, npy_files = scan_source(src)
    layout = _pick_layout(src, layout, traj_dirs, npy_files)
    _check_existing(Path(dst), image_size, camera)
    if layout == "raw":
        items: Iterator[SourceItem] = _raw_items(src, traj_dirs, image_size, camera)
        total = len(traj_dirs)
    else:
        items, total = _numpy_items(src, npy_files, image_size, camera)
    create = partial(_create_store, src=src, size=image_size, camera=camera, layout=layout)
    return convert_items(items, dst, create, total=total, desc=f"bridge ({layout})")


# ------------------------------------------------------------------------------ discovery
def scan_source(src: Path) -> tuple[list[Path], list[Path]]:
    """Trajectory directories (``traj<N>``) and ``out.npy`` files under `src`, in natural
    order (traj2 before traj10). The walk does not descend into trajectory directories."""
    if src.is_file():
        return [], [src] if src.suffix == ".npy" else []
    if _TRAJ_DIR.fullmatch(src.name):
        return [src], []
    traj_dirs, npy_files = [], []
    for root, dirnames, filenames in os.walk(src):
        for name in [d for d in dirnames if _TRAJ_DIR.fullmatch(d)]:
            traj_dirs.append(Path(root, name))
            dirnames.remove(name)  # images live below; nothing more to find there
        npy_files += [Path(root, f) for f in filenames if f == "out.npy"]
    return sorted(traj_dirs, key=_natural_key), sorted(npy_files, key=_natural_key)


def _natural_key(path: Path) -> tuple:
    return tuple(
        tuple(int(c) if c.isdigit() else c for c in re.split(r"(\d+)", part)) for part in path.parts
    )


def _pick_layout(src: Path, layout: str, traj_dirs: list, npy_files: list) -> str:
    found = {"raw": bool(traj_dirs), "numpy": bool(npy_files)}
    if layout not in ("auto", *found):
        raise ValueError(f"layout must be 'auto', 'raw' or 'numpy', got {layout!r}")
    if layout != "auto":
        if not found[layout]:
            what = "traj*/ directories" if layout == "raw" else "out.npy files"
            raise FileNotFoundError(f"no Bridge {layout} data in {src}: found no {what}")
        return layout
    if all(found.values()):
        raise ValueError(
            f"{src} holds both raw traj*/ directories and out.npy files; "
            "choose one with layout='raw' or layout='numpy'"
        )
    if not any(found.values()):
        raise FileNotFoundError(
            f"no Bridge V2 data in {src}: expected raw/traj_group*/traj*/ directories "
            "(raw layout) or out.npy files (numpy layout)"
        )
    return "raw" if found["raw"] else "numpy"


def _source_id(src: Path, path: Path) -> str:
    rel = path.relative_to(src).as_posix() if path != src else "."
    return path.name if rel == "." else rel


# ------------------------------------------------------------------------------ the store
def _create_store(path: Path, *, src: Path, size: int, camera: str, layout: str) -> EpisodeStore:
    features = standard_features(
        size,
        size,
        _DIM,
        _DIM,
        state_names=BRIDGE_STATE_NAMES,
        action_names=BRIDGE_V2_ACTION_SPEC.names,
    )
    return EpisodeStore.create(
        path,
        features=features,
        action_spec=BRIDGE_V2_ACTION_SPEC,
        fps=BRIDGE_FPS,
        world="bridge_v2",
        camera={"name": camera},
        robot="widowx_250",
        attrs={"source_format": f"bridge_v2_{layout}", "source": str(src)},
        state_spec=BRIDGE_STATE_SPEC,
    )


def _check_existing(dst: Path, size: int, camera: str) -> None:
    """Refuse to resume a store written with other settings (it would fail mid-way)."""
    if not dst.exists():
        return
    store = EpisodeStore.open(dst, "r", allow_incomplete=True)
    rgb, cam = store.features["rgb"].shape, store.camera.get("name")
    if store.world != "bridge_v2" or rgb != (size, size, 3) or cam != camera:
        raise ValueError(
            f"{dst} holds world {store.world!r}, rgb {rgb}, camera {cam!r}; this conversion "
            f"writes bridge_v2 at ({size}, {size}, 3) from {camera!r}: pass the same "
            "image_size and camera to resume it, or choose another destination"
        )


# ---------------------------------------------------------------------------- raw layout
def _raw_items(src: Path, dirs: list[Path], size: int, camera: str) -> Iterator[SourceItem]:
    for d in dirs:
        yield SourceItem(_source_id(src, d), partial(load_raw_trajectory, d, size, camera))


def load_raw_trajectory(traj_dir: Path, image_size: int = 64, camera: str = "images0") -> Episode:
    """One raw trajectory directory -> (episode, instruction, warnings); see the module
    docstring for the files. Raises SkipItem naming the file and the problem."""
    state = _as_rows(_load_pickle(traj_dir / "obs_dict.pkl", "full_state"), traj_dir, "full_state")
    actions = _as_rows(_load_pickle(traj_dir / "policy_out.pkl"), traj_dir, "policy_out actions")
    frames = _frame_paths(traj_dir, camera)
    if len(state) != len(frames):
        raise SkipItem(
            f"{traj_dir}: {len(frames)} frames in {camera}/ but {len(state)} rows of "
            "full_state in obs_dict.pkl"
        )
    actions = _align_actions(actions, len(frames), traj_dir)
    if _has_camera_delay(traj_dir):
        if len(frames) < 2:
            raise SkipItem(f"{traj_dir}: one frame left after the camera-delay shift")
        frames, state, actions = frames[1:], state[1:], actions[:-1]
    rgb = np.empty((len(frames), image_size, image_size, 3), np.uint8)
    for t, path in enumerate(frames):
        rgb[t] = square_resize(read_jpeg(path), image_size)
    instruction, warnings = read_instruction(traj_dir / "lang.txt")
    action, clip_warnings = normalise_actions(actions)
    return _episode(rgb, state, action), instruction, warnings + clip_warnings


def _load_pickle(path: Path, key: str | None = None) -> Any:
    """Unpickle `path` safely; with `key`, return that entry of the dict it holds. For
    policy_out.pkl (no key) return the actions: dicts' ``actions`` entries or bare rows."""
    if not path.is_file():
        raise SkipItem(f"{path.parent}: missing {path.name}")
    try:
        data = safe_load_pickle(path)
    except UnsafePickleError as e:
        raise SkipItem(str(e)) from e
    except Exception as e:  # untrusted bytes: any failure to parse means a corrupt file
        raise SkipItem(f"{path}: corrupt pickle ({type(e).__name__}: {e})") from e
    if key is not None:
        if not isinstance(data, Mapping) or key not in data:
            raise SkipItem(f"{path}: expected a dict with key {key!r}, got {type(data).__name__}")
        return data[key]
    if isinstance(data, Sequence | np.ndarray) and len(data) and isinstance(data[0], Mapping):
        if not all(isinstance(d, Mapping) and "actions" in d for d in data):
            raise SkipItem(f"{path}: a policy output dict lacks key 'actions'")
        return [d["actions"] for d in data]
    return data


def _frame_paths(traj_dir: Path, camera: str) -> list[Path]:
    cam_dir = traj_dir / camera
    if not cam_dir.is_dir():
        cams = sorted(p.name for p in traj_dir.glob("images*") if p.is_dir())
        raise SkipItem(f"{traj_dir}: no {camera}/ directory (cameras here: {cams})")
    index = {
        int(m[1]): cam_dir / m[0] for m in map(_FRAME_FILE.fullmatch, os.listdir(cam_dir)) if m
    }
    if not index or sorted(index) != list(range(len(index))):
        missing = sorted(set(range(max(index, default=-1) + 1)) - set(index))[:5]
        raise SkipItem(f"{cam_dir}: frames im_0.jpg.. are not contiguous (missing {missing})")
    return [index[t] for t in range(len(index))]


def _has_camera_delay(traj_dir: Path) -> bool:
    """True for recordings dated before 2021-07-23 (``<date>/raw/traj_group*/traj*``)."""
    for parent in traj_dir.resolve().parents:
        try:
            return datetime.strptime(parent.name, "%Y-%m-%d_%H-%M-%S") < LATENCY_FIXED_ON
        except ValueError:
            continue
    return False


def read_jpeg(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a JPEG file; SkipItem for a truncated or corrupt one."""
    data = path.read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SkipItem(f"{path}: unreadable or corrupt JPEG")
    # libjpeg decodes a truncated file into a grey-padded image with only a warning:
    # a missing end-of-image marker is the reliable sign.
    if b"\xff\xd9" not in data[-64:]:
        raise SkipItem(f"{path}: truncated JPEG (no end-of-image marker)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# -------------------------------------------------------------------------- numpy layout
class _NpyFile:
    """The one out.npy file in memory: its trajectories, or why it cannot be read."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.trajectories: np.ndarray | None = None
        self.error = ""

    def take(self, path: Path, index: int) -> Any:
        """Trajectory `index` of `path` (loading the file first if it is not the current
        one); the file keeps no reference to it afterwards."""
        if path != self.path:
            self.path, self.trajectories, self.error = path, None, ""  # free the old file
            try:
                self.trajectories = safe_load_npy(path)
                if self.trajectories.dtype != object:
                    dtype = self.trajectories.dtype
                    self.error = f"{path}: holds a {dtype} array, not trajectory dicts"
            except UnsafePickleError as e:
                self.error = str(e)
            except Exception as e:  # untrusted bytes: any failure means a corrupt file
                self.error = f"{path}: unreadable .npy ({type(e).__name__}: {e})"
        if self.error:
            raise SkipItem(self.error)
        traj, self.trajectories[index] = self.trajectories[index], None
        return traj


def _numpy_items(
    src: Path, files: list[Path], size: int, camera: str
) -> tuple[Iterator[SourceItem], int]:
    """Items ``<relative path of out.npy>#<index>``, counted from the files' headers."""
    counts: list[int | str] = []
    for path in files:
        try:
            shape = npy_shape(path)
            counts.append(shape[0] if len(shape) == 1 else f"{path}: array of shape {shape}")
        except (OSError, ValueError) as e:
            counts.append(str(e))
    total = sum(n if isinstance(n, int) else 1 for n in counts)

    def items() -> Iterator[SourceItem]:
        current = _NpyFile()
        for path, n in zip(files, counts, strict=True):
            rel = _source_id(src, path)
            if isinstance(n, str):
                yield SourceItem(rel, partial(_skip, n))
                continue
            for i in range(n):
                load = partial(_load_from_npy, current, path, i, size, camera)
                yield SourceItem(f"{rel}#{i}", load)

    return items(), total


def _skip(reason: str) -> Episode:
    raise SkipItem(reason)


def _load_from_npy(current: _NpyFile, path: Path, i: int, size: int, camera: str) -> Episode:
    return load_numpy_trajectory(current.take(path, i), f"{path}#{i}", size, camera)


def load_numpy_trajectory(
    traj: Any, where: str, image_size: int = 64, camera: str = "images0"
) -> Episode:
    """One trajectory dict of an out.npy file -> (episode, instruction, warnings).
    `where` names it in SkipItem reasons."""
    if not isinstance(traj, Mapping) or "observations" not in traj or "actions" not in traj:
        raise SkipItem(f"{where}: expected a dict with 'observations' and 'actions'")
    try:
        obs, actions = list(traj["observations"]), list(traj["actions"])
        nxt = traj.get("next_observations")
        if nxt is not None and len(nxt) == len(obs) == len(actions) and len(obs):
            obs.append(nxt[-1])  # the final frame only exists as the last next_observation
        images = [o[camera] for o in obs]
        states = [o["state"] for o in obs]
    except (KeyError, TypeError, IndexError) as e:
        raise SkipItem(
            f"{where}: unexpected trajectory structure ({type(e).__name__}: {e}); each "
            f"observation needs {camera!r} and 'state'"
        ) from e
    state = _as_rows(states, where, "state")
    if not images:
        raise SkipItem(f"{where}: no observations")
    actions = _align_actions(_as_rows(actions, where, "actions"), len(images), where)
    rgb = np.empty((len(images), image_size, image_size, 3), np.uint8)
    for t, image in enumerate(images):
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 3
            and image.shape[2] == 3
        ):
            raise SkipItem(f"{where}: {camera} of step {t} is not an (H, W, 3) uint8 array")
        rgb[t] = square_resize(image, image_size)
    language = traj.get("language")
    lines = [language] if isinstance(language, str) else list(language or [])
    instruction, warnings = instruction_from_lines(lines, where)
    action, clip_warnings = normalise_actions(actions)
    return _episode(rgb, state, action), instruction, warnings + clip_warnings


# ------------------------------------------------------------------------------- shared
def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop (H, W, 3) uint8 to a square, then resize to (size, size, 3) with
    ``cv2.INTER_AREA`` (pixel-area averaging: no aliasing when shrinking)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    if side != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


def read_instruction(path: Path) -> tuple[str, list[str]]:
    """The instruction in a lang.txt file and warnings: a missing file or one without an
    instruction gives "" and a warning (the trajectory is still converted)."""
    if not path.is_file():
        return "", [f"no {path.name} in {path.parent}: instruction left empty"]
    text = path.read_text(encoding="utf-8", errors="replace")
    return instruction_from_lines(text.splitlines(), str(path))


def instruction_from_lines(lines: Sequence[Any], where: str) -> tuple[str, list[str]]:
    """First non-empty line that is not a "confidence" annotation (lines may be str or
    bytes); "" and a warning when there is none."""
    for line in lines:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
        text = text.strip()
        if text and "confidence" not in text.lower():
            return text, []
    return "", [f"{where}: no language instruction; left empty"]


def _as_rows(value: Any, where: str | Path, what: str) -> np.ndarray:
    """`value` as a finite (N, 7) float64 array (N may be 0); SkipItem otherwise."""
    try:
        rows = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SkipItem(f"{where}: {what} is not a numeric array ({e})") from e
    if rows.size == 0:
        rows = rows.reshape(0, _DIM)
    if rows.ndim != 2 or rows.shape[1] != _DIM:
        raise SkipItem(f"{where}: {what} has shape {rows.shape}, expected (N, {_DIM})")
    if not np.isfinite(rows).all():
        raise SkipItem(f"{where}: {what} holds NaN or inf")
    return rows


def _align_actions(actions: np.ndarray, n_frames: int, where: str | Path) -> np.ndarray:
    """The T - 1 actions between T frames (a T-th action, taken after the last frame, is
    dropped); SkipItem for any other count."""
    if len(actions) == n_frames and n_frames > 0:
        return actions[:-1]
    if len(actions) != n_frames - 1:
        raise SkipItem(
            f"{where}: {n_frames} frames but {len(actions)} actions "
            f"(expected {n_frames - 1}, or {n_frames} with the last dropped)"
        )
    return actions


def normalise_actions(physical: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N, 7) physical actions -> ((N + 1, 7) float32 in [-1, 1] with a zero padding row
    last, warnings). Values beyond BRIDGE_V2_ACTION_SPEC's range are clipped and reported."""
    spec = BRIDGE_V2_ACTION_SPEC
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    outside = (physical < low) | (physical > high)
    warnings = []
    if outside.any():
        extremes = []
        for j in np.flatnonzero(outside.any(axis=0)):
            value = physical[np.argmax(np.abs(physical[:, j] - (low[j] + high[j]) / 2)), j]
            extremes.append(f"{spec.names[j]} {value:+.3g} {spec.units[j]}")
        warnings.append(
            f"{int(outside.any(axis=1).sum())} of {len(physical)} actions beyond the action "
            f"range were clipped (extremes: {', '.join(extremes)})"
        )
    action = np.zeros((len(physical) + 1, _DIM), np.float32)
    action[:-1] = np.clip(spec.unscale(np.clip(physical, low, high)), -1.0, 1.0)
    return action, warnings


def _episode(rgb: np.ndarray, state: np.ndarray, action: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "rgb": rgb,
        "state": state.astype(np.float32),
        "action": action,
        "reward": np.zeros(len(rgb), np.float32),
    }
