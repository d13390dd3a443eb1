"""Normalisation statistics of an episode store, computed block by block.

For every float feature (state, action, reward, ...) the stats are taken over all committed
frames, per element of the per-frame shape: mean, std (population, ddof=0), min, max, and
the 1st/99th percentiles q01/q99, plus the number of rows used (count). Moments are merged
across blocks with Chan's parallel update, so no feature is loaded whole; percentiles use
every row when there are at most `max_quantile_rows`, else an evenly strided subsample.
The last row of each episode carries a padding action (see DESIGN.md), so ``action`` stats
skip ``is_last`` rows (unless every row is one).

Image features (uint8, (H, W, C)) get per-channel mean/std/min/max in [0, 255] units,
estimated from at most `image_sample_frames` evenly spaced frames (count = frames used):
reading all of rgb for stats would cost as much as the whole dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cosmos_env.data.store import EpisodeStore

Stats = dict[str, dict[str, np.ndarray]]
PADDED_KEYS = ("action",)  # features whose is_last row is padding, not data
_BLOCK_BYTES = 4 * 1024 * 1024


def compute_stats(
    store: EpisodeStore,
    *,
    image_sample_frames: int = 256,
    max_quantile_rows: int = 1_000_000,
) -> Stats:
    """Stats of the committed rows of `store`: key -> {stat name -> array of the feature's
    per-frame shape (images: (C,))}. Features that are neither float nor images are skipped.
    """
    out: Stats = {}
    if store.n_frames == 0:
        return out
    for key, spec in store.features.items():
        dtype = np.dtype(spec.dtype)
        if np.issubdtype(dtype, np.floating):
            out[key] = _float_stats(store, key, max_quantile_rows)
        elif dtype == np.uint8 and len(spec.shape) == 3:
            out[key] = _image_stats(store, key, image_sample_frames)
    return out


class _Moments:
    """Running count/mean/M2 over rows of (n, D) float64 blocks (Chan et al.)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)
        self.min = np.full(dim, np.inf)
        self.max = np.full(dim, -np.inf)

    def update(self, x: np.ndarray) -> None:
        nb = x.shape[0]
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / n)
        self.n = n
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))


def _float_stats(store: EpisodeStore, key: str, max_quantile_rows: int) -> dict[str, np.ndarray]:
    spec = store.features[key]
    shape, dim = spec.shape, max(1, int(np.prod(spec.shape, dtype=np.int64)))
    n = store.n_frames
    skip_last = key in PADDED_KEYS and n > store.n_episodes
    step = max(1, -(-n // max_quantile_rows))  # ceil: strided subsample for the percentiles
    block = max(1, _BLOCK_BYTES // max(1, spec.row_bytes))
    moments, sample = _Moments(dim), []
    for start in range(0, n, block):
        end = min(n, start + block)
        keys = [key, "is_last"] if skip_last else [key]
        rows = store.get_rows(start, end, keys)
        x = rows[key].astype(np.float64).reshape(end - start, dim)
        keep = ~rows["is_last"] if skip_last else np.ones(end - start, bool)
        moments.update(x[keep])
        keep &= (np.arange(start, end) % step) == 0
        sample.append(x[keep])
    sample = np.concatenate(sample)
    if len(sample) == 0:  # the stride only hit padding rows: fall back to the extremes
        sample = np.stack([moments.min, moments.max])
    q01, q99 = np.quantile(sample, [0.01, 0.99], axis=0)
    values = {
        "mean": moments.mean,
        "std": np.sqrt(moments.m2 / moments.n),
        "min": moments.min,
        "max": moments.max,
        "q01": q01,
        "q99": q99,
    }
    out = {name: v.reshape(shape) for name, v in values.items()}
    out["count"] = np.asarray(moments.n, dtype=np.int64)
    return out


def _image_stats(store: EpisodeStore, key: str, sample_frames: int) -> dict[str, np.ndarray]:
    n, channels = store.n_frames, store.features[key].shape[-1]
    rows = np.unique(np.linspace(0, n - 1, min(n, sample_frames)).round().astype(np.int64))
    total, total_sq, pixels = np.zeros(channels), np.zeros(channels), 0
    lo, hi = np.full(channels, 255.0), np.zeros(channels)
    for batch in np.array_split(rows, max(1, len(rows) // 32)):  # bounded float64 temporaries
        x = store.get_frames(batch, [key])[key].reshape(-1, channels).astype(np.float64)
        total += x.sum(axis=0)
        total_sq += (x**2).sum(axis=0)  # exact in float64 for uint8 inputs
        pixels += x.shape[0]
        lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 0.0))
    return {
        "mean": mean,
        "std": std,
        "min": lo,
        "max": hi,
        "count": np.asarray(len(rows), dtype=np.int64),
    }


def stats_to_json(stats: Stats) -> dict[str, dict[str, Any]]:
    """Stats as nested lists/numbers, for zarr attrs."""
    return {k: {name: v.tolist() for name, v in s.items()} for k, s in stats.items()}


def stats_from_json(data: dict[str, dict[str, Any]]) -> Stats:
    """Inverse of `stats_to_json`: counts become int64 arrays, everything else float64."""
    return {
        k: {
            name: np.asarray(v, dtype=np.int64 if name == "count" else np.float64)
            for name, v in s.items()
        }
        for k, s in data.items()
    }
