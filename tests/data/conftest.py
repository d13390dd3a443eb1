"""Fixtures of the data tests; the helpers they use are in ``store_helpers.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from store_helpers import fill_store

from cosmos_env.data import EpisodeStore


@pytest.fixture
def filled(tmp_path: Path) -> tuple[EpisodeStore, list[dict[str, np.ndarray]]]:
    """A finalized store of LENGTHS episodes opened read-only, and its source episodes."""
    episodes = fill_store(tmp_path / "store.zarr")
    return EpisodeStore.open(tmp_path / "store.zarr"), episodes
