"""The splitter: cuts where the planted ones are, as PySceneDetect finds them, and clip
lengths within bounds."""

import numpy as np
import pytest

from cosmos_env.curate.split import SplitConfig, clips_of_shot, content_scores, detect_cuts, shots
from cosmos_env.curate.video import read_video


def test_content_score_is_zero_for_identical_frames_and_large_at_a_cut():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    scores = content_scores(np.concatenate([a, a, a, b, b]))
    assert scores.shape == (5,)
    assert scores[[0, 1, 2, 4]].tolist() == [0, 0, 0, 0]
    assert scores[3] > 50


def test_cuts_match_the_planted_ones(corpus):
    videos, truth = corpus
    for name, video in truth["videos"].items():
        frames, fps = read_video(videos / name)
        assert fps == truth["fps"]
        assert detect_cuts(frames, SplitConfig()) == video["cuts"], name


def test_cuts_agree_with_pyscenedetect(corpus):
    scenedetect = pytest.importorskip("scenedetect", reason="PySceneDetect is a dev dependency")
    videos, truth = corpus
    for name in truth["videos"]:
        scenes = scenedetect.detect(
            str(videos / name), scenedetect.AdaptiveDetector(min_scene_len=2)
        )
        theirs = [start.frame_num for start, _ in scenes][1:]
        ours = detect_cuts(read_video(videos / name)[0], SplitConfig())
        assert len(ours) == len(theirs) and all(
            abs(a - b) <= 1 for a, b in zip(ours, theirs, strict=True)
        ), name


def test_steady_motion_is_not_a_cut():
    # A bright square sliding 3 px a frame: every frame differs, none stands out.
    frames = np.zeros((30, 32, 32, 3), np.uint8)
    for t in range(30):
        frames[t, 8:16, t % 24 : t % 24 + 8] = 255
    frames[:, :, :, 1] //= 2
    assert detect_cuts(frames[:20], SplitConfig()) == []


def test_shots_and_even_clips():
    assert shots(10, [3, 7]) == [(0, 3), (3, 7), (7, 10)]
    assert shots(5, []) == [(0, 5)]
    cfg = SplitConfig(max_frames=64)
    assert clips_of_shot(0, 64, cfg) == [(0, 64)]
    pieces = clips_of_shot(10, 150, cfg)
    assert len(pieces) == 3 and pieces[0][0] == 10 and pieces[-1][1] == 150
    assert all(b - a <= 64 for a, b in pieces)
    assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))
