"""One BridgeData V2 trajectory: its action and state specs, and the readers that turn a raw
trajectory directory or one entry of an ``out.npy`` file into an episode (frames
centre-cropped and resized, actions scaled to [-1, 1]), raising `SkipItem` with the reason
for one that cannot be converted. ``bridge.py`` finds the trajectories and writes the store."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cosmos_env.data.converters.common import SkipItem
from cosmos_env.data.converters.safe_pickle import UnsafePickleError, safe_load_pickle
from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import EndEffector, StateSlot, StateSpec

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
_FRAME_FILE = re.compile(r"im_(\d+)\.jpg")

Episode = tuple[dict[str, np.ndarray], str, list[str]]


# ---------------------------------------------------------------------------- raw layout
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
