"""Small Bridge V2 source trees, written from the format description, for the converter's
tests and benchmark (which loads this module by file path).

Raw layout::

    ROOT/toykitchen1/put_carrot/<date>/raw/traj_group0/traj<i>/
        images0/im_{t}.jpg  images1/im_{t}.jpg  obs_dict.pkl  policy_out.pkl  lang.txt

Numpy layout (as Bridge's ``bridgedata_raw_to_numpy.py`` writes it)::

    ROOT/toykitchen1/put_carrot/{train,val}/out.npy   object arrays of trajectory dicts

Content is deterministic: trajectory i, frame t is a gradient with mild noise and a block
that moves with t, so JPEG treats it like a camera frame. Broken variants (a truncated or
garbage JPEG, a missing lang.txt, a pickle holding a forbidden class, a pickle whose
loading would run code) are separate functions applied to a written trajectory.
"""

from __future__ import annotations

import datetime
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

RAW_DATE = "2022-05-01_10-00-00"  # after 2021-07-23: no camera-delay shift
INSTRUCTIONS = ("put the carrot in the pot", "open the drawer", "wipe the table")


@dataclass
class Trajectory:
    """What the writer put in one trajectory (raw: frames as decoded from the JPEGs)."""

    source_id: str
    path: Path  # raw: the traj directory; numpy: the out.npy file
    frames: dict[str, np.ndarray]  # camera -> (T, H, W, 3) uint8 RGB
    states: np.ndarray  # (T, 7) float64, Bridge's full_state
    actions: np.ndarray  # (T - 1, 7) float64, physical units
    instruction: str


def make_frames(i: int, length: int, height: int, width: int, camera: int = 0) -> np.ndarray:
    """(length, height, width, 3) uint8 RGB frames of trajectory `i` seen by `camera`."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), np.full_like(xx, 0)],
        axis=-1,
    )
    base[..., 2] = (40 * i + 120 * camera) % 256
    # sensor-like noise, so that JPEG sizes and decode times resemble camera frames
    rng = np.random.default_rng(i + 100 * camera)
    noise = rng.integers(-6, 7, (length, height, width, 3), dtype=np.int16)
    frames = np.clip(base[None].astype(np.int16) + noise, 0, 255).astype(np.uint8)
    block = max(2, min(height, width) // 4)
    for t in range(length):
        top, left = (3 * t + 5 * i) % (height - block), (5 * t + 3 * i) % (width - block)
        color = ((255 - 30 * i) % 256, (50 * t) % 256, 128)
        frames[t, top : top + block, left : left + block] = color
    return frames


def make_states_actions(i: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(length, 7) states and (length - 1, 7) physical actions inside the action range."""
    rng = np.random.default_rng(1000 + i)
    states = rng.uniform(-0.3, 0.3, (length, 7))
    states[:, 6] = rng.uniform(0, 1, length)
    actions = np.concatenate(
        [
            rng.uniform(-0.04, 0.04, (length - 1, 3)),
            rng.uniform(-0.2, 0.2, (length - 1, 3)),
            rng.integers(0, 2, (length - 1, 1)).astype(np.float64),
        ],
        axis=1,
    )
    return states, actions


def write_raw_dataset(
    root: Path,
    lengths: tuple[int, ...] = (4, 5, 6),
    height: int = 32,
    width: int = 40,
    cameras: tuple[str, ...] = ("images0", "images1"),
    date: str = RAW_DATE,
    quality: int = 90,
    keep_frames: bool = True,
) -> list[Trajectory]:
    """Write one raw trajectory per entry of `lengths`; return what was written
    (``keep_frames=False``: without the decoded frames, for datasets too big to hold).

    Trajectories vary the policy_out.pkl form: i % 3 == 0 a list of dicts, 1 a bare list of
    arrays, 2 a list of dicts with a T-th action (the converter drops it). lang.txt puts a
    "confidence" line before (odd i) or after (even i) the instruction.
    """
    group = Path(root) / "toykitchen1" / "put_carrot" / date / "raw" / "traj_group0"
    written = []
    for i, length in enumerate(lengths):
        traj_dir = group / f"traj{i}"
        frames = {}
        for c, camera in enumerate(cameras):
            (traj_dir / camera).mkdir(parents=True, exist_ok=True)
            for t, rgb in enumerate(make_frames(i, length, height, width, c)):
                path = traj_dir / camera / f"im_{t}.jpg"
                cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if keep_frames:
                frames[camera] = np.stack(
                    [
                        cv2.imread(str(traj_dir / camera / f"im_{t}.jpg"))[..., ::-1]
                        for t in range(length)
                    ]
                )
        states, actions = make_states_actions(i, length)
        _write_raw_files(traj_dir, i, states, actions)
        instruction = INSTRUCTIONS[i % len(INSTRUCTIONS)]
        lines = [instruction, "confidence: 1"] if i % 2 == 0 else ["confidence: 0.9", instruction]
        (traj_dir / "lang.txt").write_text("\n".join(lines) + "\n")
        source_id = traj_dir.relative_to(root).as_posix()
        written.append(Trajectory(source_id, traj_dir, frames, states, actions, instruction))
    return written


def _write_raw_files(traj_dir: Path, i: int, states: np.ndarray, actions: np.ndarray) -> None:
    obs = {"full_state": states, "qpos": np.zeros((len(states), 6)), "time_stamp": [0.0]}
    rows = list(actions)
    if i % 3 == 2:
        rows.append(np.full(7, 0.01))  # a T-th action, after the last frame
    policy = rows if i % 3 == 1 else [{"actions": a, "policy_type": "VR"} for a in rows]
    with open(traj_dir / "obs_dict.pkl", "wb") as f:
        pickle.dump(obs, f)
    with open(traj_dir / "policy_out.pkl", "wb") as f:
        pickle.dump(policy, f)


def write_numpy_dataset(
    root: Path, lengths: tuple[int, ...] = (4, 5, 6), size: int = 32
) -> list[Trajectory]:
    """Write the trajectories into train/out.npy (all but the last) and val/out.npy (the
    last) in the numpy layout, with T - 1 observations, next_observations and actions each
    (the final frame is next_observations[-1]); return what was written."""
    base = Path(root) / "toykitchen1" / "put_carrot"
    splits = {"train": list(range(len(lengths) - 1)), "val": [len(lengths) - 1]}
    written = []
    for split, indices in splits.items():
        trajs = []
        path = base / split / "out.npy"
        for k, i in enumerate(indices):
            frames = make_frames(i, lengths[i], size, size)
            states, actions = make_states_actions(i, lengths[i])
            obs = [
                {"images0": f, "state": s, "time_stamp": 0.0}
                for f, s in zip(frames, states, strict=True)
            ]
            instruction = INSTRUCTIONS[i % len(INSTRUCTIONS)]
            trajs.append(
                {
                    "observations": obs[:-1],
                    "next_observations": obs[1:],
                    "actions": list(actions),
                    "terminals": [0] * len(actions),
                    "language": [instruction] if i % 2 else instruction,
                }
            )
            source_id = f"{path.relative_to(root).as_posix()}#{k}"
            written.append(
                Trajectory(source_id, path, {"images0": frames}, states, actions, instruction)
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, _object_array(trajs))
    return written


def _object_array(items: list) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


# ---------------------------------------------------------------------- broken variants
def corrupt_jpeg(traj_dir: Path, t: int = 1, mode: str = "truncate", camera: str = "images0"):
    """Cut frame `t` to half its bytes ("truncate") or replace it with noise ("garbage")."""
    path = Path(traj_dir) / camera / f"im_{t}.jpg"
    data = path.read_bytes()
    if mode == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8).tobytes())
    return path


def remove_lang(traj_dir: Path) -> None:
    (Path(traj_dir) / "lang.txt").unlink()


def write_forbidden_pickle(path: Path) -> None:
    """An obs_dict.pkl whose dict also holds a datetime.datetime: harmless, but a class
    outside numpy arrays and plain containers, so the restricted unpickler refuses it."""
    obs = {"full_state": np.zeros((4, 7)), "recorded": datetime.datetime(2022, 5, 1)}
    with open(path, "wb") as f:
        pickle.dump(obs, f)


class CodeExecPayload:
    """Unpickling this with plain pickle calls ``open(marker, "w")``: it creates the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_code_exec_pickle(path: Path, marker: Path) -> None:
    """A policy_out.pkl-shaped list whose first entry would create `marker` when loaded."""
    with open(path, "wb") as f:
        pickle.dump([{"actions": CodeExecPayload(marker)}, {"actions": np.zeros(7)}], f)


def write_code_exec_npy(path: Path, marker: Path) -> None:
    """An out.npy object array whose second trajectory would create `marker` when loaded
    with ``np.load(allow_pickle=True)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, _object_array([{"observations": []}, CodeExecPayload(marker)]))
