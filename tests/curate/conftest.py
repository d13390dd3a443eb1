"""A small synthetic corpus (benchmarks/curate_corpus.py), rendered once per session."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str):
    """A module of benchmarks/ by file name (the folder is not a package)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(videos folder, truth) of 20 planted clips in 4 videos, plus 2 unreadable files."""
    out = tmp_path_factory.mktemp("curate-corpus")
    truth = load_benchmark("curate_corpus").write_corpus(out, n_clips=20)
    return out / "videos", truth
