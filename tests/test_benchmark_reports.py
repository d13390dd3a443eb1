"""Benchmark reports from synthetic results: every backend and variant gets a table row,
and the JSON holds no circular references (the default sweep entry is a copy)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def fidelity():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("fidelity_bench", BENCHMARKS / "fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))


def entry(sampler: str, steps: int, psnr: float) -> dict:
    h = [1, 2]
    curves = {k: [psnr, psnr - 1] for k in ("psnr", "copy_last_psnr", "tokenizer_psnr")}
    curves |= {k: [0.9, 0.8] for k in ("ssim", "copy_last_ssim", "tokenizer_ssim")}
    curves |= {k: [1.0, 2.0] for k in ("cube_err_cm", "gripper_err_cm")}
    curves |= {"probe_on_true_cube_err_cm": [3.0, 3.0], "h": h}
    summary = {
        "psnr_h1": psnr,
        "psnr_mean_h1_16": psnr - 0.5,
        "psnr_h16": psnr - 1,
        "copy_last_psnr_h16": psnr - 3,
        "ssim_h16": 0.8,
        "state_err_h16_cm": 2.0,
        "gripper_err_h16_cm": 2.0,
    }
    timing = {"world_model_frames_per_s_batched": 200.0, "mujoco_frames_per_s": 100.0}
    return summary | {
        "sampler": sampler,
        "sampler_steps": steps,
        "per_horizon": curves,
        "timing": timing,
        "by_start": {"0": summary},
        "checkpoint": f"/x/{sampler}",
        "parameters": 1000,
    }


def test_fidelity_report_lists_backends_decoders_and_sweep(fidelity, tmp_path):
    diffusion = entry("euler", 1, 30.0)
    diffusion["sweep"] = {"1": dict(diffusion), "2": entry("euler", 2, 29.0)}
    ar = entry("parallel", 8, 25.0)
    ar["decoders"] = {"autoregressive": entry("autoregressive", 8, 26.0)}
    results = {
        "task": "push",
        "noise": 0.3,
        "horizon": 2,
        "starts": [0],
        "held_out_episodes": 2,
        "seed": 1,
        "backends": ["diffusion", "ar"],
        "diffusion": diffusion,
        "ar": ar,
    }
    text = fidelity.write(results, tmp_path)
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| diffusion (") or line.startswith("| ar (")
    ]
    assert len(rows) == 4  # diffusion at 1 (default) and 2 steps; ar parallel and token by token
    assert sum("default" in row for row in rows) == 2
    saved = json.loads((tmp_path / "fidelity.json").read_text())
    assert saved["ar"]["decoders"]["autoregressive"]["psnr_h1"] == 26.0
    assert (tmp_path / "fidelity.png").stat().st_size > 0
