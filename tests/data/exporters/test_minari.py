"""Minari export: minari.load_dataset reads back the store's episodes (T observations,
T - 1 actions, shifted rewards), in a temporary datasets root only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from export_helpers import fill_store

from cosmos_env.data import EpisodeStore
from cosmos_env.data.exporters import export_minari
from cosmos_env.data.exporters import minari as minari_export

minari = pytest.importorskip("minari")


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch) -> Path:
    """A fresh Minari datasets root (never ~/.minari)."""
    root = tmp_path / "minari_datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def assert_matches_store(dataset, store: EpisodeStore, store_episodes: list[int]) -> None:
    """Minari episode k is store episode store_episodes[k], mapped as the exporter says."""
    assert dataset.total_episodes == len(store_episodes)
    assert dataset.total_steps == sum(store.episode_length(i) - 1 for i in store_episodes)
    for k, episode in enumerate(dataset.iterate_episodes()):
        ep = store.load_episode(store_episodes[k])
        assert episode.id == k
        np.testing.assert_array_equal(episode.observations["rgb"], ep["rgb"])  # lossless
        np.testing.assert_array_equal(episode.observations["state"], ep["state"])
        assert episode.actions.dtype == np.float32
        np.testing.assert_array_equal(episode.actions, ep["action"][:-1])
        np.testing.assert_array_equal(episode.rewards, ep["reward"][1:])
        assert not episode.terminations.any()
        np.testing.assert_array_equal(episode.truncations, ep["is_last"][1:])


def test_export_loads_and_matches_store(tiny_store, minari_root: Path) -> None:
    store_path, _ = tiny_store
    summary = export_minari(store_path, "cosmos/tiny-v0")
    assert (summary.episodes, summary.frames) == (3, 16)
    assert "ends truncated" in str(summary)
    assert (minari_root / "cosmos/tiny-v0").is_dir()
    assert not list(minari_root.parent.glob(".minari_datasets*"))  # build root removed
    dataset = minari.load_dataset("cosmos/tiny-v0")
    store = EpisodeStore.open(store_path)
    assert_matches_store(dataset, store, [0, 1, 2])
    assert dataset.action_space.shape == (7,) and dataset.action_space.high.max() == 1.0
    assert dataset.observation_space["rgb"].shape == (32, 32, 3)
    meta = dataset.storage.metadata["cosmos_env"]
    assert meta["action_spec"]["names"][-1] == "gripper" and meta["world"] == "tabletop"
    assert "cosmos/tiny-v0" in minari.list_local_datasets()


def test_one_frame_episodes_are_left_out(tmp_path: Path, minari_root: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3, 1, 4))
    summary = export_minari(tmp_path / "s.zarr", "short-v0")
    assert summary.episodes == 2 and "[1]" in str(summary)
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert_matches_store(minari.load_dataset("short-v0"), store, [0, 2])
    fill_store(tmp_path / "ones.zarr", lengths=(1,))
    with pytest.raises(ValueError, match="one frame"):
        export_minari(tmp_path / "ones.zarr", "ones-v0")


def test_data_path_and_existing_dataset(
    tiny_store, tmp_path: Path, minari_root: Path, monkeypatch
) -> None:
    store_path, _ = tiny_store
    other = tmp_path / "elsewhere"
    export_minari(store_path, "tiny-v0", data_path=other)
    assert (other / "tiny-v0/data/metadata.json").is_file()
    assert os.environ["MINARI_DATASETS_PATH"] == str(minari_root)  # restored
    assert not (minari_root / "tiny-v0").exists()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_minari(store_path, "tiny-v0", data_path=other)
    export_minari(store_path, "tiny-v0", data_path=other, overwrite=True)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(other))
    assert minari.load_dataset("tiny-v0").total_episodes == 3


def test_interrupted_export_leaves_nothing(tiny_store, minari_root: Path, monkeypatch) -> None:
    store_path, _ = tiny_store
    real = minari_export._buffers

    def failing(store, keep, guard):
        iterator = real(store, keep, guard)
        yield next(iterator)
        raise KeyboardInterrupt("killed mid-export")

    monkeypatch.setattr(minari_export, "_buffers", failing)
    with pytest.raises(KeyboardInterrupt):
        export_minari(store_path, "cosmos/tiny-v0")
    assert not (minari_root / "cosmos/tiny-v0").exists()
    assert os.environ["MINARI_DATASETS_PATH"] == str(minari_root)
    monkeypatch.setattr(minari_export, "_buffers", real)
    export_minari(store_path, "cosmos/tiny-v0")  # a re-run starts over
    assert minari.load_dataset("cosmos/tiny-v0").total_episodes == 3


@pytest.mark.parametrize(
    "bad_id", ["../../escape/x-v0", "/abs/x-v0", "ns/../../x-v0", "ns//x-v0", "noversion", ""]
)
def test_a_bad_id_is_refused_before_anything_is_written(
    tiny_store, minari_root: Path, tmp_path: Path, bad_id: str
) -> None:
    store_path, _ = tiny_store
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="Minari dataset id .* is malformed"):
        export_minari(store_path, bad_id)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no directory made anywhere
