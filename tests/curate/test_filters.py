"""Each filter on clips rendered from our world: the planted defect is what it reports."""

import cv2
import numpy as np
import pytest

from cosmos_env.curate.filters import FilterConfig, clip_stats, reject_reason
from cosmos_env.curate.video import read_video


@pytest.fixture(scope="module")
def clean(corpus):
    """A clean planted clip's frames (T, 64, 64, 3)."""
    videos, truth = corpus
    for name, video in truth["videos"].items():
        for clip in video["clips"]:
            if clip["kind"] == "clean":
                return read_video(videos / name)[0][clip["start"] : clip["end"]]
    raise AssertionError("the corpus has no clean clip")


def reason(frames):
    return reject_reason(clip_stats(frames, FilterConfig()), FilterConfig())


def test_a_clean_clip_is_kept(clean):
    assert reason(clean) is None


def test_each_defect_is_named(clean):
    rng = np.random.default_rng(0)
    held = np.repeat(clean[:1], len(clean), 0).astype(np.float32) + rng.normal(0, 2, clean.shape)
    assert reason(np.clip(held, 0, 255).astype(np.uint8)) == "static"
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in clean])
    assert reason(blurred) == "blurred"
    assert reason((clean * 0.06).astype(np.uint8)) == "too dark"
    assert (
        reason((255 - (255 - clean.astype(np.float32)) * 0.04).astype(np.uint8)) == "over-exposed"
    )


@pytest.mark.parametrize("size", [96, 256, 512])
@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee"])
def test_sharpness_does_not_depend_on_scene_or_resolution(photo, size):
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the photographs")
    image = cv2.resize(getattr(data, photo)(), (size, size), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    cfg = FilterConfig()
    assert clip_stats(image[None], cfg)["sharpness"] > 2 * cfg.min_sharpness
    assert clip_stats(blurred[None], cfg)["sharpness"] < cfg.min_sharpness


def test_a_black_clip_is_too_dark_not_static():
    assert reason(np.zeros((10, 32, 32, 3), np.uint8)) == "too dark"
