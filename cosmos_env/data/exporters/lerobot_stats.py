"""The statistics of a LeRobot v3.0 export: per-episode ``stats/<feature>/<stat>`` rows of
the episodes table, and the dataset's ``meta/stats.json`` (min/max/mean/std/count)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmos_env.data.store import EpisodeStore


def episode_stats(
    columns: dict[str, np.ndarray], video_key: str, rgb: np.ndarray
) -> dict[str, list]:
    """Per-episode stats as LeRobot stores them: ``stats/<feature>/<stat>`` -> nested list;
    vectors (D,), scalars (1,), the video per channel in [0, 1] as (3, 1, 1)."""
    out = {}
    for name, x in columns.items():
        if x.dtype == bool:
            continue
        x = x.astype(np.float64).reshape(len(x), -1)
        for stat, value in _moments(x).items():
            out[f"stats/{name}/{stat}"] = value.tolist()
    pixels = rgb.reshape(-1, rgb.shape[-1]).astype(np.float64) / 255.0
    for stat, value in _moments(pixels).items():
        shaped = value if stat == "count" else value.reshape(-1, 1, 1)
        out[f"stats/{video_key}/{stat}"] = shaped.tolist()
    out[f"stats/{video_key}/count"] = [len(rgb)]  # frames, as LeRobot counts images
    return out


def _moments(x: np.ndarray) -> dict[str, np.ndarray]:
    """min/max/mean/std (population) over rows of (n, D) float64, and count (1,)."""
    return {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.asarray([len(x)]),
    }


def dataset_stats(
    store: EpisodeStore, rows: list[dict[str, Any]], video_key: str, actions: str
) -> dict[str, dict[str, list]]:
    """stats.json: state, action and images from the store's stats (actions mapped like the
    data), every other numeric column pooled from the per-episode stats."""
    names = {key.split("/")[1] for key in rows[0] if key.startswith("stats/")}
    out = {name: _pooled(rows, name) for name in sorted(names - {video_key})}
    src = store.stats
    out["observation.state"] = _store_stats(src["state"])
    out["action"] = _store_stats(src["action"])
    if actions == "physical":
        out["action"] = _scale_stats(out["action"], store)
    rgb = {k: np.asarray(v) / 255.0 for k, v in src["rgb"].items() if k != "count"}
    out[video_key] = {k: v.reshape(-1, 1, 1).tolist() for k, v in rgb.items()}
    out[video_key]["count"] = [int(src["rgb"]["count"])]
    return out


def _store_stats(stats: dict[str, np.ndarray]) -> dict[str, list]:
    out = {k: np.asarray(v, np.float64).tolist() for k, v in stats.items() if k != "count"}
    out["count"] = [int(stats["count"])]
    return out


def _scale_stats(stats: dict[str, list], store: EpisodeStore) -> dict[str, list]:
    """Stats of [-1, 1] actions -> stats of physical actions (scale is affine, increasing)."""
    spec = store.action_spec
    half = 0.5 * (np.asarray(spec.high) - np.asarray(spec.low))
    out = {
        k: spec.scale(np.asarray(v, np.float64)).tolist()
        for k, v in stats.items()
        if k not in ("std", "count")
    }
    out["std"] = (np.asarray(stats["std"]) * half).tolist()
    out["count"] = stats["count"]
    return out


def _pooled(rows: list[dict[str, Any]], name: str) -> dict[str, list]:
    """Whole-dataset min/max/mean/std/count of one column from its per-episode stats."""

    def get(stat: str) -> np.ndarray:
        return np.asarray([row[f"stats/{name}/{stat}"] for row in rows], np.float64)

    counts = get("count")  # (E, 1)
    means, stds = get("mean"), get("std")  # (E, D)
    mean = (counts * means).sum(0) / counts.sum()
    var = (counts * (stds**2 + (means - mean) ** 2)).sum(0) / counts.sum()
    return {
        "min": get("min").min(0).tolist(),
        "max": get("max").max(0).tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(var).tolist(),
        "count": [int(counts.sum())],
    }
