"""Where a world-model episode starts: held-out store frames (default: the frames shipped
with the checkpoint, or the first frames of a store's held-out episodes), a live MuJoCo
reset (so the simulator and the world model start identical), or frames the caller passes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cosmos_env.data.store import EpisodeStore

RESET_SOURCES = ("store", "mujoco", "frames")


def check_frames(frames: np.ndarray, num: int, size: int, context: int) -> np.ndarray:
    """Caller reset frames -> uint8 (num, k, size, size, 3), or a ValueError naming the problem.

    Accepts (num, size, size, 3) (one frame each) or (num, k, size, size, 3) with
    1 <= k <= context, oldest first.
    """
    arr = np.asarray(frames)
    if arr.ndim == 4:
        arr = arr[:, None]
    expected = f"({num}, {size}, {size}, 3) or ({num}, k, {size}, {size}, 3) with k <= {context}"
    if arr.ndim != 5 or arr.shape[0] != num or arr.shape[2:] != (size, size, 3):
        raise ValueError(f"reset frames have shape {np.shape(frames)}, expected {expected}")
    if not 1 <= arr.shape[1] <= context:
        raise ValueError(f"reset frames have {arr.shape[1]} frames per env, expected {expected}")
    if arr.dtype != np.uint8:
        raise ValueError(f"reset frames have dtype {arr.dtype}, expected uint8 RGB")
    return arr


def check_states(states, shape: tuple[int, int], state_dim: int) -> np.ndarray:
    """Caller reset states for frames of leading shape (num, k) -> float32 (num, k, S), or a
    ValueError naming the problem. (num, S) is accepted when k is 1."""
    arr = np.asarray(states, dtype=np.float32)
    if arr.ndim == 2 and shape[1] == 1:
        arr = arr[:, None]
    if arr.shape != (*shape, state_dim):
        raise ValueError(
            f"reset states have shape {np.shape(states)}, expected {(*shape, state_dim)}: "
            "one task state per reset frame"
        )
    if not np.isfinite(arr).all():
        raise ValueError("reset states contain NaN or inf")
    return arr


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


class MujocoResets:
    """Initial frames from live resets of the matching MuJoCo env, seeded from the
    world-model env's RNG; ``last_states`` holds their true states."""

    def __init__(self, task: str, image_size: int) -> None:
        from cosmos_env.sim.tabletop_env import TabletopEnv

        self.env = TabletopEnv(task=task, image_size=image_size)
        self.last_states: np.ndarray | None = None

    def sample(self, rng: np.random.Generator, num: int) -> np.ndarray:
        frames, states = [], []
        for _ in range(num):
            frame, info = self.env.reset(seed=int(rng.integers(2**31)))
            frames.append(frame)
            states.append(info["state"])
        self.last_states = np.stack(states)
        return np.stack(frames)

    def close(self) -> None:
        self.env.close()
