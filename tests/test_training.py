"""The training loop's shared pieces: the TensorBoard board beside train.log."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cosmos_env.training import Board


def _events(directory) -> EventAccumulator:
    events = EventAccumulator(str(directory), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def test_the_board_writes_scalars_and_frames_for_tensorboard(tmp_path):
    board = Board(tmp_path)
    assert not board.directory.exists()  # nothing logged, nothing written
    board.scalars(50, {"diffusion": torch.tensor(0.25), "lr": 1e-3})
    board.scalars(100, {"diffusion": 0.125})
    board.scalars(100, {"psnr": 31.5}, "eval")
    frames = torch.zeros(4, 8, 8, 3, dtype=torch.uint8)
    frames[1, :, :, 0] = 255  # a red second frame
    board.frames(100, "eval/rollout", frames)
    board.close()
    events = _events(board.directory)
    loss = events.Scalars("train/diffusion")
    assert [(e.step, e.value) for e in loss] == [(50, 0.25), (100, 0.125)]
    assert events.Scalars("eval/psnr")[0].value == 31.5
    assert events.Scalars("train/lr")[0].value == pytest.approx(1e-3)
    images = events.Images("eval/rollout")
    assert images and images[0].step == 100 and images[0].width == 8 * 4
