"""The markdown tables of `env_speed.py`'s results (env_speed.md)."""

from __future__ import annotations

from pathlib import Path

from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_line
from cosmos_env.precision import amp_words

BATCHES = (1, 16, 64)  # the sub-env counts env_speed.py times


def speed_table(results: dict) -> str:
    mj = results["mujoco_fps"]
    rows = [["MuJoCo TabletopEnv push, step + render 64x64", 1, mj, 1.0]]
    notes = []
    b = BATCHES[-1]
    for backend in results["backends"]:
        d = results[backend]
        name = f"{backend} ({Path(d['checkpoint']).name}, {d['sampler']} x{d['sampler_steps']})"
        rows += [[name, n, d[f"fps_b{n}"], d[f"ratio_b{n}"]] for n in BATCHES]
        for sampler, alt in d.get("decoders", {}).items():
            name = f"{backend} ({Path(d['checkpoint']).name}, {sampler})"
            rows += [[name, n, alt[f"fps_b{n}"], alt[f"ratio_b{n}"]] for n in BATCHES]
        if "kv_cache" in d:
            kv = d["kv_cache"]
            notes.append(
                f"{backend} token-by-token frame with the KV cache vs recomputing the "
                f"sequence per token: {kv['speedup_b1']:.1f}x faster at batch 1 "
                f"({kv['cached_s_b1'] * 1e3:.0f} vs {kv['uncached_s_b1'] * 1e3:.0f} ms), "
                f"{kv['speedup_b16']:.1f}x at batch 16; tokens equal to the recomputed ones: "
                f"{kv['same_tokens_b1']:.2%} at batch 1, {kv['same_tokens_b16']:.2%} at 16."
            )
        notes.append(
            f"{backend} step at {b} sub-envs: {d[f'gflop_per_step_b{b}']:.2f} GFLOP "
            f"({d[f'mflop_per_frame_b{b}']:.1f} MFLOP/frame), {d[f'gflops_b{b}']:.1f} GFLOP/s "
            f"achieved ({amp_words(d['amp'])})."
        )
    table = markdown_table(["env", "sub-envs", "frames/s", "vs MuJoCo (1 process)"], rows)
    m = results["machine"]
    text = (
        f"{table}\n\n{' '.join(notes)} Matmul: {results['matmul_gflops_fp32']:.1f} GFLOP/s fp32 "
        f"(2048^2), {results['matmul_gflops_bf16']:.1f} GFLOP/s bf16 "
        f"({results['matmul_bf16_size']}^2), same run. {machine_line(m)} 1-min load average "
        f"at start {m['loadavg_1min']:.2f} (timings assume an idle machine).\n"
    )
    if "precision" in results:
        text += "\n" + _precision_table(results) + "\n"
    if "compile" in results:
        text += "\n" + _compile_table(results) + "\n"
    return text


def _fps_cell(entry: dict, n: int) -> str:
    """Median frames/s, with the rounds' range where they were recorded."""
    rounds = entry.get(f"fps_rounds_b{n}")
    spread = f" [{min(rounds):.0f}-{max(rounds):.0f}]" if rounds else ""
    return f"{entry[f'fps_b{n}']:.1f}{spread}"


def _precision_table(results: dict) -> str:
    """frames/s per amp setting and batch size; with all three settings, ``auto`` over the
    faster of forced on and off (1.00: as fast) and over its twin, the forced setting that
    runs the same path (how far two timings of the same code differ: the noise)."""
    precision, rows = results["precision"], []
    resolved = {s: precision[s]["bf16_autocast"] for s in precision}
    full = {"auto", "true", "false"} <= resolved.keys()
    for backend in results["backends"]:
        for n in BATCHES:
            entries = {s: precision[s][backend] for s in precision}
            row = [backend, n] + [_fps_cell(entries[s], n) for s in precision]
            if full:
                fps = {s: e[f"fps_b{n}"] for s, e in entries.items()}
                twin = "true" if resolved["auto"] else "false"
                row += [fps["auto"] / max(fps["true"], fps["false"]), fps["auto"] / fps[twin]]
            rows.append(row)
    head = [f"amp={s} ({'bf16' if on else 'fp32'}) frames/s" for s, on in resolved.items()]
    if full:
        head += ["auto / faster of true, false", "auto / same path forced (noise)"]
    return (
        "Precision, same run (median of the rounds, their range in brackets):\n\n"
        + markdown_table(["backend", "sub-envs", *head], rows)
    )


def _compile_table(results: dict) -> str:
    rows = []
    for setting, d in results["compile"].items():
        precision = "bf16" if d["bf16_autocast"] else "fp32"
        for n in BATCHES:
            cells = [_fps_cell(d["eager"], n), _fps_cell(d["compiled"], n)]
            ratios = [d["eager"][f"ratio_b{n}"], d["compiled"][f"ratio_b{n}"]]
            rows.append([f"amp={setting} ({precision})", n, *cells, d[f"speedup_b{n}"], *ratios])
    head = ["setting", "sub-envs", "eager frames/s", "compiled frames/s", "speed-up"]
    head += ["eager vs MuJoCo", "compiled vs MuJoCo"]
    return (
        "Diffusion env with `compile=True` (torch.compile of the network) beside eager, "
        "same run (median of the rounds, their range in brackets):\n\n" + markdown_table(head, rows)
    )
