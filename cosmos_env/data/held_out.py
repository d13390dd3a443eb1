"""The first frames of a store's held-out episodes: where world-model envs reset from, and
what a release ships to reset from."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cosmos_env.data.store import EpisodeStore


@lru_cache(maxsize=4)
def held_out_first_frames(
    store_path: str, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """First frames (N, H, W, 3) and states (N, S) of a store's held-out episodes."""
    store = EpisodeStore.open(Path(store_path))
    missing = [key for key in ("rgb", "state") if key not in store.features]
    if missing:
        raise ValueError(
            f"store {store_path} has no {missing}: env resets need rgb frames and states"
        )
    _, val = store.split(val_fraction, seed)
    if len(val) == 0:
        raise ValueError(
            f"store {store_path} has {store.n_episodes} episode(s), so none is held out for "
            f"resets (val_fraction {val_fraction}); pass a store of 2 or more episodes, or "
            "reset with options={'frames': ...}"
        )
    frames, states = [], []
    for ep in val:
        lo, _ = store.episode_bounds(int(ep))
        row = store.get_rows(lo, lo + 1, keys=["rgb", "state"])
        frames.append(row["rgb"][0])
        states.append(row["state"][0])
    return np.stack(frames), np.stack(states)
