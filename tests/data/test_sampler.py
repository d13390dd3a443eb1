"""WindowSampler: window enumeration, boundaries, batching, in-memory mode."""

from __future__ import annotations

import numpy as np
import pytest

from cosmos_env.data import WindowSampler


def lengths_of(episodes) -> list[int]:
    return [len(e["is_first"]) for e in episodes]


def expected_count(lengths, window: int, stride: int) -> int:
    return sum(max(0, (n - window) // stride + 1) for n in lengths)


@pytest.mark.parametrize(
    ("context", "horizon", "stride"), [(1, 0, 1), (3, 2, 1), (4, 4, 3), (2, 15, 2)]
)
def test_window_count_and_index(filled, context: int, horizon: int, stride: int) -> None:
    store, episodes = filled
    lengths = lengths_of(episodes)
    sampler = WindowSampler(store, None, context, horizon, stride=stride)
    window = context + horizon
    assert len(sampler) == expected_count(lengths, window, stride)
    expected = [(e, s) for e, n in enumerate(lengths) for s in range(0, n - window + 1, stride)]
    np.testing.assert_array_equal(sampler.window_index, np.array(expected).reshape(-1, 2))
    assert sampler.window_index.dtype == np.int64


def test_windows_never_cross_episode_boundaries(filled) -> None:
    store, episodes = filled
    sampler = WindowSampler(store, None, context=3, horizon=2)
    for i in range(len(sampler)):
        w = sampler[i]
        episode, start = sampler.window_index[i]
        assert w["rgb"].shape == (5, 8, 8, 3) and w["state"].dtype == np.float32
        assert np.all(w["episode_id"] == episode)
        np.testing.assert_array_equal(w["frame_index"], np.arange(start, start + 5))
        assert not w["is_first"][1:].any() and not w["is_last"][:-1].any()
        np.testing.assert_array_equal(w["rgb"], episodes[episode]["rgb"][start : start + 5])
    np.testing.assert_array_equal(
        sampler[-1]["frame_index"], sampler[len(sampler) - 1]["frame_index"]
    )
    with pytest.raises(IndexError, match="out of range"):
        sampler[len(sampler)]


def test_sample_batches(filled) -> None:
    store, _ = filled
    sampler = WindowSampler(
        store, [1, 3], context=2, horizon=6, keys=["rgb", "episode_id", "frame_index"]
    )
    batch = sampler.sample(16, np.random.default_rng(0))
    assert set(batch) == {"rgb", "episode_id", "frame_index"}
    assert batch["rgb"].shape == (16, 8, 8, 8, 3) and batch["rgb"].dtype == np.uint8
    assert batch["episode_id"].shape == (16, 8)
    assert set(np.unique(batch["episode_id"])) <= {1, 3}
    assert np.all(batch["episode_id"] == batch["episode_id"][:, :1])  # one episode per window
    assert np.all(np.diff(batch["frame_index"], axis=1) == 1)  # consecutive frames
    again = sampler.sample(16, np.random.default_rng(0))
    for key in batch:
        np.testing.assert_array_equal(batch[key], again[key])
    idx = np.array([0, 5, 5, len(sampler) - 1])
    stacked = sampler.get_batch(idx)
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(stacked["rgb"][j], sampler[int(i)]["rgb"])


def test_in_memory_matches_store_reads(filled) -> None:
    store, _ = filled
    lazy = WindowSampler(store, [4, 1, 3], context=3, horizon=1, stride=2)
    eager = WindowSampler(store, [4, 1, 3], context=3, horizon=1, stride=2, in_memory=True)
    np.testing.assert_array_equal(lazy.window_index, eager.window_index)
    for i in (0, 3, len(lazy) - 1):
        for key, value in lazy[i].items():
            np.testing.assert_array_equal(eager[i][key], value)
    a, b = lazy.sample(8, np.random.default_rng(1)), eager.sample(8, np.random.default_rng(1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_sampler_errors(filled) -> None:
    store, _ = filled
    with pytest.raises(ValueError, match="no window of length 50 fits"):
        WindowSampler(store, None, context=40, horizon=10)
    with pytest.raises(IndexError, match=r"episodes \[7\] out of range"):
        WindowSampler(store, [0, 7], context=1, horizon=0)
    with pytest.raises(ValueError, match="context >= 1"):
        WindowSampler(store, None, context=0, horizon=2)
    with pytest.raises(KeyError, match="unknown keys"):
        WindowSampler(store, None, context=1, horizon=1, keys=["depth"])
    with pytest.raises(ValueError, match="duplicates"):
        WindowSampler(store, [1, 1], context=1, horizon=1)
