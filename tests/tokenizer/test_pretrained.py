"""The shipped tokenizers: they load, match their recorded checksums, and reconstruct
freshly rendered tabletop frames (golden numbers from their model cards, with a margin)."""

import json

import numpy as np
import pytest
import torch

from cosmos_env.checkpoint import PRETRAINED_DIR
from cosmos_env.eval.metrics import psnr, to_unit
from cosmos_env.sim.experts import ScriptedExpert
from cosmos_env.sim.tabletop_env import TabletopEnv
from cosmos_env.tokenizer.release import decode_frames, encode_frames, load_tokenizer


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    env = TabletopEnv(task="pick_place", terminate_on_success=False)
    out = []
    for seed in (777, 778):
        _, info = env.reset(seed=seed)
        expert = ScriptedExpert("pick_place", noise=0.2, seed=seed)
        for _ in range(16):
            obs, *_, info = env.step(expert.act(info["state"]))
            out.append(obs)
    env.close()
    return torch.from_numpy(np.stack(out))


@pytest.mark.parametrize("name, min_psnr", [("CI8x8", 32.0), ("DI8x8", 28.0)])
def test_shipped_tokenizer_reconstructs_tabletop_frames(name, min_psnr, frames):
    model = load_tokenizer(name)
    assert model.source == PRETRAINED_DIR / name
    config = json.loads((PRETRAINED_DIR / name / "config.json").read_text())
    assert config["tokenizer"]["name"] == name
    assert (PRETRAINED_DIR / name / "card.md").read_text().startswith(f"# {name}")
    recon = decode_frames(model, encode_frames(model, frames))
    assert psnr(to_unit(recon), to_unit(frames)).mean() > min_psnr


def test_shipped_checkpoints_stay_small():
    total = sum(p.stat().st_size for p in PRETRAINED_DIR.rglob("*") if p.is_file())
    assert total < 60 * 2**20  # the project's limit for everything shipped
