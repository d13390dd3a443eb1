import pytest
import torch

from cosmos_env.tokenizer import haar
from cosmos_env.tokenizer.fsq import FSQ


def test_haar_is_orthonormal_and_invertible():
    x = torch.randn(3, 5, 16, 16)
    y = haar.haar_down(x)
    assert y.shape == (3, 20, 8, 8)
    torch.testing.assert_close(haar.haar_up(y), x)
    torch.testing.assert_close(y.pow(2).sum(), x.pow(2).sum())  # energy preserved


@pytest.mark.parametrize("temporal, frames", [(False, 1), (False, 4), (True, 1), (True, 5)])
def test_patch_round_trip(temporal, frames):
    video = torch.randn(2, frames, 3, 16, 16)
    patched = haar.patch(video, levels=2, temporal=temporal)
    expected_t = (frames + 1) // 2 if temporal else frames
    assert patched.shape == (2, expected_t, 48 * (2 if temporal else 1), 4, 4)
    torch.testing.assert_close(haar.unpatch(patched, 2, temporal), video)


def test_temporal_patch_first_frame_alone():
    video = torch.randn(1, 5, 3, 8, 8)
    other = video.clone()
    other[:, 1:] = torch.randn_like(other[:, 1:])
    a, b = haar.patch(video, 1, True), haar.patch(other, 1, True)
    torch.testing.assert_close(a[:, 0], b[:, 0])  # latent frame 0 only sees frame 0


def test_fsq_codes_indices_round_trip():
    fsq = FSQ([8, 5, 5, 5])
    assert fsq.codebook_size == 1000
    codes = fsq(torch.randn(64, 4) * 3)
    indices = fsq.codes_to_indices(codes)
    assert indices.min() >= 0 and indices.max() < 1000
    torch.testing.assert_close(fsq.indices_to_codes(indices), codes)
    all_codes = fsq.indices_to_codes(torch.arange(1000))
    assert torch.equal(fsq.codes_to_indices(all_codes), torch.arange(1000))
    assert all_codes.abs().max() <= 1.0


def test_fsq_straight_through_gradient():
    fsq = FSQ([5, 5])
    z = torch.randn(10, 2, requires_grad=True)
    fsq(z).sum().backward()
    assert z.grad is not None and (z.grad != 0).all()


def test_fsq_refuses_bad_levels_and_indices():
    with pytest.raises(ValueError, match="levels"):
        FSQ([1, 5])
    fsq = FSQ([4, 4])
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        fsq.indices_to_codes(torch.tensor([16]))
