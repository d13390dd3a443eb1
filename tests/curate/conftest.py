"""A small synthetic corpus (benchmarks/curate_corpus.py), rendered once per session."""

import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(videos folder, truth) of 20 planted clips in 4 videos, plus 2 unreadable files."""
    out = tmp_path_factory.mktemp("curate-corpus")
    truth = load_benchmark("curate_corpus").write_corpus(out, n_clips=20)
    return out / "videos", truth
