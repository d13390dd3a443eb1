"""The face post-guard: the faces in scikit-image's shipped photographs are found and
pixelated until the detector no longer finds them, frames of our worlds pass unchanged,
and switching the guard off is explicit."""

import numpy as np
import pytest

from cosmos_env.guardrails.faces import FaceGuard, guard_frames

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()  # uint8 (512, 512, 3), one frontal face


def test_the_shipped_face_is_found_and_no_longer_found_after_the_guard(astronaut):
    guard = FaceGuard()
    (box,) = guard.detect(astronaut)
    x, y, w, h = box
    assert 150 < x < 220 and 40 < y < 100 and w > 60  # the face, not the suit or flag
    guarded = guard_frames(astronaut)
    assert len(guard.detect(guarded)) == 0
    # at the detector's most permissive setting (one detection suffices) it is gone too
    assert len(FaceGuard(min_neighbors=1).detect(guarded[y : y + h, x : x + w])) == 0
    outside = np.ones(astronaut.shape[:2], bool)
    outside[max(0, y - h) : y + 2 * h, max(0, x - w) : x + 2 * w] = False
    assert np.array_equal(guarded[outside], astronaut[outside])  # only the face changed
    assert not np.array_equal(guarded, astronaut)


def test_a_batch_with_a_face_changes_only_the_frames_with_one(astronaut):
    small = astronaut[::2, ::2]  # (256, 256, 3): the face is still about 48 px wide
    blank = np.full_like(small, 90)
    frames = np.stack([blank, small, blank])[None]  # (1, 3, H, W, 3)
    guarded = guard_frames(frames)
    assert guarded.shape == frames.shape
    assert np.array_equal(guarded[0, 0], blank) and np.array_equal(guarded[0, 2], blank)
    assert not np.array_equal(guarded[0, 1], small)


def test_frames_of_our_worlds_pass_unchanged():
    from cosmos_env.eval.simulate import simulate

    for world in ("push", "pick_place"):
        frames = simulate(world, "scripted", 0.3, 2, 8, 0, 64).frames
        assert guard_frames(frames) is frames  # no face: the very same array
    large = simulate("push", "scripted", 0.3, 1, 2, 0, 256).frames
    assert guard_frames(large) is large


def test_switching_the_guard_off_is_explicit_and_bad_frames_are_refused(astronaut):
    assert guard_frames(astronaut, guard=False) is astronaut
    with pytest.raises(ValueError, match="uint8 RGB frames"):
        guard_frames(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="uint8 RGB frames"):
        guard_frames(astronaut[..., 0])
