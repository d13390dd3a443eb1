"""Fixed-length windows over the episodes of an `EpisodeStore` (Diffusion Policy's
SequenceSampler without padding): every window lies inside one episode."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cosmos_env.data.store import EpisodeStore


class WindowSampler:
    """All windows of ``context + horizon`` consecutive frames of the chosen episodes.

    Window starts within an episode of length T are ``0, stride, 2 * stride, ...`` up to
    ``T - (context + horizon)``, so an episode holds ``max(0, (T - L) // stride + 1)``
    windows, L = context + horizon; windows never cross an episode boundary and are not
    padded. Items are dicts key -> (L, *shape) arrays; `sample` stacks them to (B, L, *shape).

    With ``in_memory=True`` the chosen episodes' `keys` are read once into RAM (fast random
    access for training); otherwise each read goes to the store and decodes only the
    chunks the window touches.
    """

    def __init__(
        self,
        store: EpisodeStore,
        episodes: Sequence[int] | None,
        context: int,
        horizon: int,
        keys: Sequence[str] | None = None,
        stride: int = 1,
        *,
        in_memory: bool = False,
    ) -> None:
        if context < 1 or horizon < 0 or stride < 1:
            raise ValueError(
                f"need context >= 1, horizon >= 0, stride >= 1; got {context}, {horizon}, {stride}"
            )
        self.store, self.context, self.horizon, self.stride = store, context, horizon, stride
        self.keys = list(store.features) if keys is None else list(keys)
        unknown = [k for k in self.keys if k not in store.features]
        if unknown:
            raise KeyError(f"unknown keys {unknown}; the store has {list(store.features)}")
        self.episodes = _check_episodes(store, episodes)
        self.window_length = context + horizon
        self.window_index, firsts = self._enumerate_windows()
        if len(self.window_index) == 0:
            longest = max(store.episode_length(e) for e in self.episodes)
            raise ValueError(
                f"no window of length {self.window_length} fits in the {len(self.episodes)} "
                f"chosen episodes (the longest has {longest} frames)"
            )
        self._buffer: dict[str, np.ndarray] | None = None
        self._first_row = firsts  # (N,) row of each window's first frame
        if in_memory:
            self._load_into_memory()

    def _enumerate_windows(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) int64 (episode, start within episode) and (N,) int64 global first rows."""
        index, firsts = [], []
        for e in self.episodes:
            first, end = self.store.episode_bounds(e)
            starts = np.arange(0, end - first - self.window_length + 1, self.stride, np.int64)
            index.append(np.stack([np.full_like(starts, e), starts], axis=1))
            firsts.append(first + starts)
        return np.concatenate(index).reshape(-1, 2), np.concatenate(firsts)

    def _load_into_memory(self) -> None:
        # Concatenate the chosen episodes and re-point each window at its row in the buffer.
        parts = [self.store.load_episode(int(e), self.keys) for e in self.episodes]
        self._buffer = {k: np.concatenate([p[k] for p in parts]) for k in self.keys}
        lengths = np.array([self.store.episode_length(e) for e in self.episodes], np.int64)
        offsets = dict(zip(self.episodes.tolist(), np.cumsum(lengths) - lengths, strict=True))
        ep_offset = np.array([offsets[e] for e in self.window_index[:, 0].tolist()], np.int64)
        self._first_row = ep_offset + self.window_index[:, 1]

    def __len__(self) -> int:
        """Number of windows N."""
        return len(self.window_index)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Window `i`: key -> (L, *shape) array of the store dtype."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"window {i} out of range: the sampler has {n} windows")
        first = int(self._first_row[i])
        if self._buffer is not None:
            return {k: v[first : first + self.window_length] for k, v in self._buffer.items()}
        return self.store.get_rows(first, first + self.window_length, self.keys)

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Windows `indices` (B,) stacked: key -> (B, L, *shape)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1:
            raise ValueError(f"indices must be 1-d, got shape {indices.shape}")
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"window indices out of range: the sampler has {len(self)}")
        rows = self._first_row[indices][:, None] + np.arange(self.window_length)  # (B, L)
        if self._buffer is not None:
            return {k: v[rows] for k, v in self._buffer.items()}
        flat = self.store.get_frames(rows.reshape(-1), self.keys)  # one gather per key
        return {k: v.reshape(*rows.shape, *v.shape[1:]) for k, v in flat.items()}

    def sample(self, batch_size: int, generator: np.random.Generator) -> dict[str, np.ndarray]:
        """`batch_size` windows drawn uniformly with replacement: key -> (B, L, *shape)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.get_batch(generator.integers(0, len(self), size=batch_size))


def _check_episodes(store: EpisodeStore, episodes: Sequence[int] | None) -> np.ndarray:
    if store.n_episodes == 0:
        raise ValueError(f"{store.path} has no committed episodes to sample from")
    if episodes is None:
        return np.arange(store.n_episodes, dtype=np.int64)
    eps = np.asarray(episodes, dtype=np.int64).reshape(-1)
    if eps.size == 0:
        raise ValueError("episodes is empty; pass None for all episodes")
    bad = eps[(eps < 0) | (eps >= store.n_episodes)]
    if bad.size:
        raise IndexError(f"episodes {bad.tolist()} out of range: the store has {store.n_episodes}")
    if len(np.unique(eps)) != len(eps):
        raise ValueError("episodes contains duplicates")
    return eps
