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
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cosmos_env.data.converters.bridge_files import (
    BRIDGE_FPS,
    BRIDGE_STATE_NAMES,
    BRIDGE_STATE_SPEC,
    BRIDGE_V2_ACTION_SPEC,
    Episode,
    load_numpy_trajectory,
    load_raw_trajectory,
    read_instruction,
    square_resize,
)
from cosmos_env.data.converters.common import (
    ConversionSummary,
    SkipItem,
    SourceItem,
    convert_items,
)
from cosmos_env.data.converters.safe_pickle import UnsafePickleError, npy_shape, safe_load_npy
from cosmos_env.data.spec import standard_features
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

_TRAJ_DIR = re.compile(r"traj\d+")


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
        len(BRIDGE_STATE_NAMES),
        len(BRIDGE_V2_ACTION_SPEC.names),
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
