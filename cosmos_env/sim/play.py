"""Play policies: purposeful-looking motion without a task, for pre-training data.

A world model learns how things move from experts, from random actions and from "play":
the gripper travelling to random places, often an object's, and opening or closing
there, as a person exploring the scene would. `TabletopPlay` does that on the tabletop's
state; `SmoothRandom` is the play of any Box action space (Gymnasium MuJoCo envs): random
targets in action space, held for a random while and approached smoothly, so joints swing
through their range instead of jittering as uniform random actions make them.

Both are seeded, act on ``(state)`` or ``(obs)`` alone and are cheap enough to run per step.
"""

from __future__ import annotations

import numpy as np

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.experts import SAFE_Z, move_towards
from cosmos_env.sim.tabletop_world import WORKSPACE_HIGH, WORKSPACE_LOW

NEAR_OBJECT = 0.6  # share of targets placed at (or just above) a present object
TARGET_STEPS = (6, 24)  # a target is dropped after this many steps, reached or not
REACHED = 0.01  # m


class TabletopPlay:
    """Random-target play on the tabletop: the gripper moves to a random target (at a
    present object, or anywhere in the workspace), turns to a random yaw and opens or
    closes there; a new target follows on arrival or after a random number of steps.
    Actions float32 (7,) in [-1, 1] of Bridge's end-effector delta, from the state
    (STATE_DIM,) of ``state_layout``."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._target: np.ndarray | None = None
        self._yaw = 0.0
        self._grip = 1.0
        self._left = 0

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._target = None

    def _new_target(self, state: np.ndarray) -> None:
        present = [o for o in sl.OBJECT_NAMES if sl.get(state, f"{o}_present")[0] > 0.5]
        if present and self.rng.random() < NEAR_OBJECT:
            obj = sl.get(state, f"{present[self.rng.integers(len(present))]}_pos")
            xy = obj[:2] + self.rng.normal(0.0, 0.015, 2)
            z = self.rng.uniform(WORKSPACE_LOW[2], SAFE_Z)
            target = np.r_[xy, z]
        else:
            target = self.rng.uniform(WORKSPACE_LOW, WORKSPACE_HIGH)
        self._target = np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH)
        self._yaw = float(self.rng.uniform(-np.pi / 2, np.pi / 2))
        self._grip = float(self.rng.choice([-1.0, 1.0]))
        self._left = int(self.rng.integers(TARGET_STEPS[0], TARGET_STEPS[1] + 1))

    def act(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, np.float64)
        gripper = sl.get(state, "gripper_pos")
        arrived = self._target is not None and np.linalg.norm(self._target - gripper) < REACHED
        if self._target is None or arrived or self._left <= 0:
            self._new_target(state)
        self._left -= 1
        w, x, y, z = sl.get(state, "gripper_quat")
        yaw = float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
        action = move_towards(gripper, self._target, self._yaw - yaw, self._grip)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


class SmoothRandom:
    """Play in any bounded Box action space (low, high: arrays of the action's shape): a
    random target action, re-drawn after a random 6-24 steps, approached by a first-order
    filter (``smoothing`` of the gap closed per step), plus a little uniform jitter."""

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        seed: int | None = None,
        smoothing: float = 0.3,
        jitter: float = 0.1,
    ) -> None:
        self.low = np.asarray(low, np.float64)
        self.high = np.asarray(high, np.float64)
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError("SmoothRandom needs a bounded action space (finite low and high)")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self._low32, self._high32 = self.low.astype(np.float32), self.high.astype(np.float32)
        self.smoothing = smoothing
        self.jitter = jitter
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._action = (self.low + self.high) / 2
        self._left = 0

    def act(self, obs: object = None) -> np.ndarray:
        if self._left <= 0:
            self._target = self.rng.uniform(self.low, self.high)
            self._left = int(self.rng.integers(TARGET_STEPS[0], TARGET_STEPS[1] + 1))
        self._left -= 1
        self._action += self.smoothing * (self._target - self._action)
        span = (self.high - self.low) / 2
        noisy = self._action + self.jitter * span * self.rng.uniform(-1, 1, self.low.shape)
        # Clipped in float32, so that a float32 space's bounds hold exactly.
        return np.clip(noisy.astype(np.float32), self._low32, self._high32)
