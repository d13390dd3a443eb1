"""The shared conversion loop: order, skips with reasons, resume without duplicates, and
no store that reads as complete until every item was tried."""

from __future__ import annotations

import numpy as np
import pytest

from cosmos_env.data import ActionSpec, EpisodeStore, standard_features
from cosmos_env.data.converters.common import SkipItem, SourceItem, convert_items
from cosmos_env.data.layout import StoreError


def create_store(path):
    spec = ActionSpec(("dx", "grip"), ("m", "1"), (-0.1, 0.0), (0.1, 1.0))
    return EpisodeStore.create(
        path, features=standard_features(4, 4, 2, 2), action_spec=spec, fps=5.0, world="test"
    )


def make_episode(i: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    return {
        "rgb": rng.integers(0, 255, (length, 4, 4, 3), dtype=np.uint8),
        "state": rng.standard_normal((length, 2)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32),
        "reward": np.zeros(length, np.float32),
    }


def items(n: int, bad: tuple[int, ...] = (), crash_at: int | None = None) -> list[SourceItem]:
    def loader(i: int):
        def load():
            if i == crash_at:
                raise KeyboardInterrupt  # the process is killed while loading item i
            if i in bad:
                raise SkipItem(f"item {i} is broken")
            return make_episode(i, 3 + i), f"task {i}", [f"note {i}"] if i == 2 else []

        return load

    return [SourceItem(f"traj{i}", loader(i)) for i in range(n)]


def test_converts_in_order_and_lists_skipped_items_with_reasons(tmp_path):
    summary = convert_items(items(5, bad=(1, 3)), tmp_path / "s.zarr", create_store, total=5)
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert [store.source_id(i) for i in range(store.n_episodes)] == ["traj0", "traj2", "traj4"]
    assert store.instruction(1) == "task 2" and store.is_complete
    assert (summary.episodes, summary.frames) == (3, 3 + 5 + 7)
    assert summary.skipped == [("traj1", "item 1 is broken"), ("traj3", "item 3 is broken")]
    assert "3 episodes, 15 frames converted; 2 skipped, 1 warnings" in str(summary)
    assert summary.warnings == [("traj2", "note 2")] and "warning traj2: note 2" in str(summary)
    assert summary.to_dict()["skipped"][0] == {"source_id": "traj1", "reason": "item 1 is broken"}


def test_resume_after_a_kill_neither_duplicates_nor_loses_episodes(tmp_path):
    dst = tmp_path / "s.zarr"
    with pytest.raises(KeyboardInterrupt):
        convert_items(items(6, crash_at=4), dst, create_store)
    with pytest.raises(StoreError, match="incomplete"):
        EpisodeStore.open(dst)  # an interrupted conversion never reads as complete
    summary = convert_items(items(6), dst, create_store)
    store = EpisodeStore.open(dst)
    assert [store.source_id(i) for i in range(store.n_episodes)] == [f"traj{i}" for i in range(6)]
    assert (summary.resumed, summary.episodes) == (4, 2)
    assert "(4 already there from an earlier run)" in str(summary)


def test_nothing_converted_is_an_error_that_says_why(tmp_path):
    with pytest.raises(StoreError, match="every item was skipped(.|\n)*item 0 is broken"):
        convert_items(items(2, bad=(0, 1)), tmp_path / "s.zarr", create_store)
    with pytest.raises(StoreError, match="the source has no items"):
        convert_items([], tmp_path / "t.zarr", create_store)
