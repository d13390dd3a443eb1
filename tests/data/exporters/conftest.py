from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_helpers import fill_store


@pytest.fixture
def tiny_store(tmp_path: Path) -> tuple[Path, list[dict[str, np.ndarray]]]:
    """(path of a finalized tiny store, its episodes)."""
    path = tmp_path / "store.zarr"
    return path, fill_store(path)
