"""Where a world-model episode starts: held-out store frames (default: the frames shipped
with the checkpoint, or the first frames of a store's held-out episodes), a live MuJoCo
reset of the world's simulator (so both start identical), or frames the caller passes.
"""

from __future__ import annotations

import numpy as np

from cosmos_env.data.world import World

# "sim" (alias "mujoco"): a live reset of the world's simulator.
RESET_SOURCES = ("store", "sim", "mujoco", "frames")


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


class SimResets:
    """Initial frames and states from live resets of the world's simulator, seeded from
    the world-model env's RNG, so the simulator and the world model start identical."""

    def __init__(self, world: World, image_size: int) -> None:
        self.world, self.image_size = world, image_size

    def sample(self, rng: np.random.Generator, num: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames uint8 (num, H, W, 3) and their states (num, S)."""
        pairs = [self.world.reset(int(rng.integers(2**31)), self.image_size) for _ in range(num)]
        return np.stack([f for f, _ in pairs]), np.stack([s for _, s in pairs])

    def close(self) -> None:
        pass  # the world (and its simulator) is shared between envs
