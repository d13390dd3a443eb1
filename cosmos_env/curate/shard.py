"""Kept clips into zarr episode stores, one per resolution and length bucket.

A shard is an `EpisodeStore` whose episodes are clips: ``rgb`` the clip's frames, ``action``
the sidecar's actions where every clip of the shard has them (else one zero dimension named
``none``: video carries no action), ``state`` the time within the clip in seconds (the one
state a bare video has), reward 0. The instruction is the clip's, and the source id
``<video>#<start>-<end>``. Clips of one shape and length bucket share a shard, so that a
trainer reads windows of one size. Each shard is written under a hidden partial name and
renamed when finalized: a killed run never leaves a shard that reads as complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_env.data.spec import ActionSpec, standard_features
from cosmos_env.data.state_spec import StateSlot, StateSpec
from cosmos_env.data.store import EpisodeStore

NO_ACTION = ActionSpec(("none",), ("",), (-1.0,), (1.0,))
TIME_STATE = StateSpec((StateSlot("time", 1, "other", "s"),))


def length_bucket(frames: int, edges: list[int]) -> str:
    """The bucket name of a clip of ``frames``: "len<lo>-<hi>" between sorted ``edges``."""
    lo = max((e for e in edges if e <= frames), default=1)
    hi = min((e for e in edges if e > frames), default=None)
    return f"len{lo}-{hi - 1}" if hi else f"len{lo}+"


def shard_name(clip: dict[str, Any], edges: list[int]) -> str:
    """``<H>x<W>-<bucket>[-a<A>]``: clips that can share a store."""
    name = f"{clip['height']}x{clip['width']}-{length_bucket(clip['end'] - clip['start'], edges)}"
    return name + (f"-a{clip['action_dim']}" if clip.get("action_dim") else "")


def write_shard(
    path: Path,
    clips: list[dict[str, Any]],
    load: Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray | None]],
    fps: float,
) -> dict[str, Any]:
    """Write ``clips`` (annotations; ``load(clip) -> (frames, actions or None)``) to a new
    store at ``path``; return its summary. A complete store already there is kept."""
    if path.exists():
        store = EpisodeStore.open(path)
        return {"path": str(path), "episodes": store.n_episodes, "frames": store.n_frames}
    first = clips[0]
    action_spec = _action_spec(first)
    features = standard_features(
        first["height"], first["width"], 1, action_spec.dim, ("time",), action_spec.names
    )
    partial = path.with_name(f".{path.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    store = EpisodeStore.create(
        partial,
        features=features,
        action_spec=action_spec,
        fps=fps,
        world="video",
        state_spec=TIME_STATE,
        attrs={"curated": True, "actions": "sidecar" if first.get("action_dim") else "none"},
    )
    for clip in clips:
        frames, actions = load(clip)
        store.append_episode(_episode(frames, actions, fps), clip["instruction"], clip["id"])
    store.finalize()
    partial.rename(path)
    return {"path": str(path), "episodes": store.n_episodes, "frames": store.n_frames}


def _action_spec(clip: dict[str, Any]) -> ActionSpec:
    dim = clip.get("action_dim")
    if not dim:
        return NO_ACTION
    names = tuple(clip.get("action_names") or [f"a{i}" for i in range(dim)])
    return ActionSpec(names, ("",) * dim, (-1.0,) * dim, (1.0,) * dim)


def _episode(frames: np.ndarray, actions: np.ndarray | None, fps: float) -> dict[str, np.ndarray]:
    n = len(frames)
    return {
        "rgb": frames,
        "state": (np.arange(n, dtype=np.float32) / fps)[:, None],
        "action": actions if actions is not None else np.zeros((n, 1), np.float32),
        "reward": np.zeros(n, np.float32),
    }
