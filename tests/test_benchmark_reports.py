"""Benchmark reports from synthetic results: every backend and variant gets a table row,
and the JSON holds no circular references (the default sweep entry is a copy)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from benchmark_modules import load_benchmark

from cosmos_env.machine import machine_info

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
        "cube_err_h16_cm": 2.0,
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
    ar = entry("parallel", 1, 25.0)
    ar["sweep"] = {"1": dict(ar), "8": entry("parallel", 8, 24.5)}
    ar["decoders"] = {"autoregressive": entry("autoregressive", 1, 26.0)}
    results = {
        "machine": machine_info(),
        "amp": {"requested": False, "bf16_autocast": False, "reason": "set explicitly"},
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
    # diffusion at 1 (default) and 2 steps; ar parallel at 1 (default) and 8 passes, and
    # token by token
    assert len(rows) == 5
    assert any(r.startswith("| ar (parallel, 8 step(s)) ") for r in rows)
    assert "bf16 autocast off (amp=False: set explicitly)" in text and "Machine: " in text
    assert sum("default" in row for row in rows) == 2
    saved = json.loads((tmp_path / "fidelity.json").read_text())
    assert saved["ar"]["decoders"]["autoregressive"]["psnr_h1"] == 26.0
    assert (tmp_path / "fidelity.png").stat().st_size > 0


AUTO = {"requested": "auto", "bf16_autocast": False, "reason": "x86 CPU capability AVX2"}


def speed_entry(sampler: str, fps: float) -> dict:
    entry = {"checkpoint": f"/x/{sampler}", "sampler": sampler, "sampler_steps": 8, "amp": AUTO}
    return entry | {
        k: v
        for n in (1, 16, 64)
        for k, v in ((f"fps_b{n}", fps * n), (f"ratio_b{n}", fps * n / 500.0))
    }


def speed_results() -> dict:
    diffusion = speed_entry("euler", 100.0) | {
        "gflop_per_step_b64": 38.0,
        "mflop_per_frame_b64": 600.0,
        "gflops_b64": 250.0,
    }
    ar = speed_entry("parallel", 10.0) | {
        "gflop_per_step_b64": 5.0,
        "mflop_per_frame_b64": 80.0,
        "gflops_b64": 100.0,
        "decoders": {"autoregressive": speed_entry("autoregressive", 2.0)},
        "kv_cache": {
            "cached_s_b1": 0.1,
            "uncached_s_b1": 1.2,
            "speedup_b1": 12.0,
            "same_tokens_b1": 1.0,
            "cached_s_b16": 0.3,
            "uncached_s_b16": 3.0,
            "speedup_b16": 10.0,
            "same_tokens_b16": 0.995,
        },
    }
    return {
        "machine": machine_info(),
        "mujoco_fps": 500.0,
        "matmul_gflops_fp32": 200.0,
        "matmul_gflops_bf16": 0.8,
        "matmul_bf16_size": 512,
        "backends": ["diffusion", "ar"],
        "diffusion": diffusion,
        "ar": ar,
    }


def test_env_speed_table_has_both_ar_decoders_and_the_kv_cache_figure():
    text = load_benchmark("env_speed_tables").speed_table(speed_results())
    rows = [line for line in text.splitlines() if line.startswith("| ar (")]
    assert len(rows) == 6  # parallel and token by token at batch 1, 16, 64
    assert "12.0x faster at batch 1" in text and "100.00% at batch 1, 99.50% at 16" in text
    assert "bf16 autocast off (amp=auto: x86 CPU capability AVX2)" in text
    assert "Precision" not in text  # a run of "auto" alone has no precision table


def test_env_speed_precision_table_compares_auto_with_the_faster_setting():
    results = speed_results()
    fps = {"true": 10.0, "false": 50.0, "auto": 49.0}
    results["precision"] = {
        s: {"bf16_autocast": s == "true"}
        | {b: {f"fps_b{n}": v * n for n in (1, 16, 64)} for b in results["backends"]}
        for s, v in fps.items()
    }
    results["precision"]["false"]["diffusion"]["fps_rounds_b1"] = [48.0, 50.0, 53.0]
    text = load_benchmark("env_speed_tables").speed_table(results)
    rows = [line for line in text.splitlines() if line.startswith("| diffusion | ")]
    assert rows[0].startswith("| diffusion | 1 | 10.0 | 50.0 [48-53] | 49.0 |")
    assert len(rows) == 3 and all(row.endswith("| 0.980 | 0.980 |") for row in rows)
    assert "amp=false (fp32) frames/s" in text and "amp=true (bf16) frames/s" in text


def test_env_speed_compile_table_gives_the_speed_up_and_both_ratios():
    results = speed_results()

    def entry(fps: float) -> dict:
        return {
            k: v
            for n in (1, 16, 64)
            for k, v in ((f"fps_b{n}", fps * n), (f"ratio_b{n}", fps * n / 500.0))
        }

    results["compile"] = {
        "false": {"eager": entry(4.0), "compiled": entry(5.0), "bf16_autocast": False}
        | {f"speedup_b{n}": 1.25 for n in (1, 16, 64)}
    }
    text = load_benchmark("env_speed_tables").speed_table(results)
    rows = [line for line in text.splitlines() if line.startswith("| amp=false (fp32) |")]
    assert len(rows) == 3
    assert rows[2] == "| amp=false (fp32) | 64 | 256.0 | 320.0 | 1.250 | 0.512 | 0.640 |"


def test_backend_table_has_one_row_per_backend_and_decoder(tmp_path):
    backends = load_benchmark("backends")
    diffusion = entry("euler", 1, 30.0)
    ar = entry("parallel", 8, 25.0)
    ar["decoders"] = {"autoregressive": entry("autoregressive", 8, 26.0)}
    fidelity = {
        "held_out_episodes": 2,
        "seed": 1,
        "starts": [0],
        "backends": ["diffusion", "ar"],
        "diffusion": diffusion,
        "ar": ar,
    }
    records = backends.compare_backends(fidelity, speed_results())
    assert [(r["backend"], r["sampler"]) for r in records] == [
        ("diffusion", "euler"),
        ("ar", "parallel"),
        ("ar", "autoregressive"),
    ]
    assert records[2]["psnr_h1"] == 26.0 and records[2]["fps_b64"] == 128.0
    text = backends.write(records, fidelity, speed_results(), tmp_path)
    assert text.count("| ar (") == 2 and "| diffusion (euler x1) |" in text
    saved = json.loads((tmp_path / "backends.json").read_text())
    assert saved["records"][1]["parameters"] == 1000 and saved["machine"]["usable_cores"] >= 1
    assert saved["source_machines"]["env_speed"] == speed_results()["machine"]


def test_backend_table_refuses_reports_of_different_checkpoints():
    backends = load_benchmark("backends")
    fidelity = {"backends": ["ar"], "ar": entry("parallel", 8, 25.0)}
    speed = speed_results() | {"backends": ["diffusion"]}
    with pytest.raises(ValueError, match="no 'ar' entry"):
        backends.compare_backends(fidelity, speed)


@pytest.fixture(scope="module")
def policy_eval():
    spec = importlib.util.spec_from_file_location("policy_eval", BENCHMARKS / "policy_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_policy_eval_report_scores_each_backend(policy_eval, tmp_path):
    def world(rate: float) -> dict:
        return {"success_rate": rate, "ci95": [max(0, rate - 0.1), min(1, rate + 0.1)]} | {
            "mean_return": rate * 10,
            "seconds": 1.0,
        }

    rates = {"expert": (0.9, 1.0, 0.8), "noisy": (0.5, 0.4, 0.6), "random": (0.0, 0.1, 0.0)}
    policies = {
        name: {"spec": {"kind": name}, "mujoco": world(m), "diffusion": world(d), "ar": world(a)}
        for name, (m, d, a) in rates.items()
    }
    results = {"task": "push", "episodes": 10, "backends": ["diffusion", "ar"]}
    results |= {"policies": policies}
    for backend in results["backends"]:
        results[backend] = policy_eval.agreement(policies, backend)
    assert results["diffusion"]["mmrv"] == 0.0 and results["diffusion"]["n_policies"] == 3
    expected = np.corrcoef([1.0, 0.4, 0.1], [0.9, 0.5, 0.0])[0, 1]
    assert results["diffusion"]["pearson"] == pytest.approx(expected)
    table = policy_eval.markdown(results)
    assert "| noisy | 0.50 [0.40, 0.60] | 0.40 [0.30, 0.50] | 0.60 [0.50, 0.70]" in table
    assert table.count("\n| diffusion |") == 1 and table.count("\n| ar |") == 1
    assert policy_eval.plot(results, tmp_path / "policy_eval.png").stat().st_size > 1000
    json.dumps(results)


@pytest.fixture(scope="module")
def tiny_sweep(policy_eval, tiny_world_model_dir):
    """A two-policy, two-episode suite in a tiny world model: its evaluate_suite arguments
    and its results, run in this process (the default), once for the tests below."""
    suite = {"task": "push", "seed": 1, "policies": [{"kind": "random"}, {"kind": "scripted"}]}
    args = (suite, 2, ["diffusion"], {"diffusion": tiny_world_model_dir})
    return args, policy_eval.evaluate_suite(*args)


def test_policy_eval_runs_a_given_checkpoint(tiny_sweep, tiny_world_model_dir):
    _, results = tiny_sweep
    assert results["checkpoints"] == {"diffusion": str(tiny_world_model_dir)}
    assert set(results["policies"]) == {"random", "scripted-0"}
    for entry in results["policies"].values():
        assert 0.0 <= entry["diffusion"]["success_rate"] <= 1.0
    assert results["diffusion"]["n_policies"] == 2
    json.dumps(results)


def _without_timings(results: dict) -> str:
    """``results`` less each run's wall time (the only field allowed to differ), as JSON
    (in which NaN, the correlation of constant success rates, equals itself)."""
    policies = {
        name: {w: {k: v for k, v in o.items() if k != "seconds"} for w, o in entry.items()}
        for name, entry in results["policies"].items()
    }
    return json.dumps(results | {"policies": policies}, sort_keys=True, default=str)


def test_policy_eval_on_ray_workers_gives_the_results_of_one_process(
    policy_eval, tiny_sweep, ray_session
):
    args, here = tiny_sweep
    on_ray = policy_eval.evaluate_suite(*args, executor="ray", workers=2)
    assert list(on_ray["policies"]) == ["random", "scripted-0"]  # the suite's order
    assert _without_timings(on_ray) == _without_timings(here)
    returns = {n: e["mujoco"]["mean_return"] for n, e in here["policies"].items()}
    assert returns["random"] != returns["scripted-0"]  # two policies, not one run twice


def test_policy_eval_refuses_a_checkpoint_for_a_backend_it_skips(policy_eval, monkeypatch, capsys):
    argv = ["policy_eval.py", "--backends", "diffusion", "--ar-checkpoint", "somewhere"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        policy_eval.main()
    assert "checkpoint is given for ['ar'], which --backends leaves out" in capsys.readouterr().err


def test_policy_eval_refuses_zero_workers(policy_eval, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["policy_eval.py", "--executor", "ray", "--workers", "0"])
    with pytest.raises(SystemExit):
        policy_eval.main()
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err


def test_env_profile_splits_a_step_into_stages_and_operators(tiny_world_model_dir, tmp_path):
    profiler = load_benchmark("env_profile")
    results = profiler.run([str(tiny_world_model_dir)], [2], steps=2, amp="false")
    entry = results["diffusion"]["b2"]
    assert set(entry["stages"]) == {"dynamics", "decode", "score", "other"}
    assert entry["stages"]["dynamics"] > 0 and entry["stages"]["decode"] > 0
    labelled = entry["stages"]["dynamics"] + entry["stages"]["decode"] + entry["stages"]["score"]
    assert labelled < entry["step_ms"]  # the labelled stages lie inside the timed step
    ops = entry["top_ops"]
    assert 0 < len(ops) <= profiler.TOP
    assert [o["self_ms"] for o in ops] == sorted((o["self_ms"] for o in ops), reverse=True)
    assert all(o["op"] not in ("dynamics", "decode", "score") for o in ops)
    text = profiler.markdown(results)
    assert "Milliseconds a step, by stage" in text and "Top operators at 2 sub-envs" in text


def test_kv_cache_speed_runs_on_a_state_track_model(tiny_ar_track_world_model_dir):
    from cosmos_env.dynamics.release import load_world_model

    speed = load_benchmark("env_speed").kv_cache_speed(
        load_world_model(tiny_ar_track_world_model_dir), batches=(1,), repeats=1
    )
    assert speed["same_tokens_b1"] == 1.0  # cached and recomputed decoding agree
    assert speed["cached_s_b1"] > 0 and speed["speedup_b1"] > 0
