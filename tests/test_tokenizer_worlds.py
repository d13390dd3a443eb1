"""benchmarks/tokenizer_worlds.py: every corpus world and held-out target is recorded apart
from the training seeds, rates are counted right, and a world's row has every metric."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            "tokenizer_worlds_bench", BENCHMARKS / "tokenizer_worlds.py"
        )
        module = sys.modules["tokenizer_worlds_bench"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_every_corpus_world_and_held_out_target_is_recorded_on_fresh_seeds(bench):
    worlds = bench.world_recordings(2)
    assert {
        "tabletop-push",
        "reacher",
        "hopper",
        "held-out tabletop",
        "held-out Walker2d-v5",
    } <= set(worlds)
    assert all(g.episodes == 2 for g in worlds.values())
    assert (
        len({g.seed for g in worlds.values()}) > 1 and min(g.seed for g in worlds.values()) >= 9_999
    )
    assert worlds["held-out tabletop"].world.scene["task_object"]["shapes"] == ["capsule"]


def test_bits_per_pixel_of_continuous_and_discrete_codes(bench):
    from cosmos_env.tokenizer.release import load_tokenizer

    assert bench.bits_per_pixel(load_tokenizer("CI8x8"), 64) == pytest.approx(64 * 16 * 16 / 4096)
    discrete = load_tokenizer("DI8x8")
    expected = 64 * np.log2(discrete.cfg.codebook_size) / 4096
    assert bench.bits_per_pixel(discrete, 64) == pytest.approx(expected)


def test_a_world_row_scores_each_tokenizer_beside_jpeg(bench):
    from cosmos_env.tokenizer.release import load_tokenizer

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), 8, axis=1).repeat(
        8, axis=2
    )
    row = bench.score_world(frames, {"DI8x8": load_tokenizer("DI8x8")})
    assert set(row["DI8x8"]) == {"psnr", "ssim", "bpp", "jpeg_psnr"}
    assert np.isfinite(row["DI8x8"]["psnr"]) and 0 < row["DI8x8"]["ssim"] <= 1
    jpeg = row["DI8x8"]["jpeg_psnr"]  # None where JPEG cannot go as low as 0.16 bpp
    assert jpeg is None or np.isfinite(jpeg)


def test_every_shipped_world_is_rendered_as_its_release_sees_it_with_its_own_tokenizer(bench):
    worlds = bench.shipped_world_frames(limit=5, episodes=1, horizon=3)
    assert set(worlds) >= {"shipped tabletop-push", "shipped gym:Reacher-v5"}
    frames, own = worlds["shipped tabletop-push"]
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8 and own == "CI8x8"
    assert worlds["shipped gym:Reacher-v5"][1] == "CI8x8-gym"
    results = {"worlds": {"shipped tabletop-push": {"frames": 4, "own": own, "CI8x8": {}}}}
    results["worlds"]["shipped tabletop-push"]["CI8x8"] = {"psnr": 30.0, "jpeg_psnr": None}
    assert (
        bench.table(results).splitlines()[-1]
        == "| shipped tabletop-push | 4 | 30.000 | - | CI8x8 |"
    )
