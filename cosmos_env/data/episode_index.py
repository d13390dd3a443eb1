"""Where a store's episodes lie: the committed episode ends in memory, episode bounds and
indices, and the deterministic train/val split by episode. Internal to `EpisodeStore`."""

from __future__ import annotations

import numpy as np


class EpisodeEnds:
    """The exclusive end row of each committed episode, (E,) int64, cumulative.

    Appends grow the buffer by doubling, so committing an episode costs no copy of the
    ends already held.
    """

    def __init__(self, ends: np.ndarray) -> None:
        self._buf = np.asarray(ends, np.int64).copy()
        self._n = len(self._buf)

    @property
    def array(self) -> np.ndarray:
        """View (E,) of the committed ends; copy it before handing it out."""
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n

    @property
    def n_frames(self) -> int:
        """Rows covered by the committed episodes."""
        return int(self._buf[self._n - 1]) if self._n else 0

    def push(self, end: int) -> None:
        """Commit one more episode ending at row `end` (exclusive)."""
        if self._n == len(self._buf):
            self._buf = np.concatenate([self.array, np.zeros(max(16, self._n), np.int64)])
        self._buf[self._n] = end
        self._n += 1

    def index(self, i: int) -> int:
        """Episode `i` as an index in [0, E); negative `i` counts from the end."""
        if not -self._n <= i < self._n:
            raise IndexError(f"episode {i} out of range: the store has {self._n} episodes")
        return int(i) % self._n

    def bounds(self, i: int) -> tuple[int, int]:
        """(start, end) rows of episode `i` (end exclusive)."""
        i = self.index(i)
        start = int(self._buf[i - 1]) if i > 0 else 0
        return start, int(self._buf[i])


def split_episodes(
    n_episodes: int, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/val split of `n_episodes` episodes: (train, val) sorted int64
    index arrays.

    Same count, fraction and seed give the same split; every episode is on exactly one side;
    with 2+ episodes and ``val_fraction > 0`` val holds at least one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(n_episodes * val_fraction)
    if val_fraction > 0 and n_episodes >= 2:
        n_val = min(max(n_val, 1), n_episodes - 1)
    perm = np.random.default_rng(seed).permutation(n_episodes)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
