"""World-model env speed beside MuJoCo: frames/s of the world-model vector env at 1, 16
and 64 sub-envs against one MuJoCo tabletop process, measured in the same run, with the
achieved GFLOP/s of a 64-env world-model step beside the machine's matmul rates.

    python benchmarks/env_speed.py [--quick] [--out DIR] [--checkpoints NAME_OR_DIR ...]
                                   [--sampler-steps N] [--threads N] [--amp SETTING ...]
                                   [--compile]

- ``mujoco_fps``: steps/s of one ``TabletopEnv('push')`` process stepping random actions
  and rendering every step (64x64), measured by ``gt_env_speed.env_frames_per_s`` (the
  same code as gt_env_speed's one-process number).
- ``<backend>.fps_bN`` (``diffusion``, ``ar``: every shipped push model by default):
  sub-env frames/s of ``WorldModelVectorEnv(num_envs=N)`` stepping
  random actions (N * steps / seconds, after a warm-up; autoresets included, as in MuJoCo);
  ``diffusion.ratio_bN`` = ``fps_bN / mujoco_fps``.
- ``diffusion.gflops_b64``: FLOPs of one 64-env step (dynamics sampling passes, decode and
  state probe, counted by torch's FlopCounterMode on a step without autoresets) / the mean
  step time of the timed run, beside
  ``matmul_gflops_fp32`` and ``matmul_gflops_bf16`` (2048^2 matmuls, same run).
- ``ar.decoders.<sampler>``: the AR model's other decoder (token by token beside the
  default MaskGIT-style parallel one, or the reverse) at the same batch sizes.
- ``ar.kv_cache``: one token-by-token frame (float32) with the KV cache (``predict_next``:
  prefill the context once, then one token per pass) against recomputing the whole
  sequence for every token (``decode_frame_nocache``), same context, actions and generator
  seed, at batch 1 and 16: seconds per frame, ``speedup_bN`` and ``same_tokens_bN``, the
  share of tokens both drew alike (1.0 = identical; the two paths sum in different orders,
  so a near-tie between two levels can rarely flip, and the rest of the frame follows it).

- ``precision.<setting>.<backend>``: the same frames/s at each batch size with ``amp``
  forced on (``true``), off (``false``) and ``auto`` (the envs' default: bf16 autocast
  only where the CPU has it natively), measured interleaved in one run; each entry says
  what its setting resolved to. ``--amp`` picks the settings (default all three; ``auto``
  alone with ``--quick``, which then skips this section). The main entries above run
  ``auto``; ``machine`` says which CPU it was.

- ``compile.<setting>`` (with ``--compile``): the diffusion env eager and with
  ``compile=True`` at each batch size, interleaved as above, under each forced ``amp``
  setting that was asked for (``auto`` alone: auto), with ``speedup_bN`` = compiled / eager.

Writes DIR/env_speed.json and DIR/env_speed.md. Timings mean something only on an
otherwise idle machine; ``loadavg_1min`` records how busy it was at the start.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from gt_env_speed import env_frames_per_s
from torch.utils.flop_counter import FlopCounterMode

from cosmos_env.dynamics.release import WorldModel, load_world_model, shipped_world_models
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.eval.media import markdown_table
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.precision import amp_words, bf16_support, describe_amp, resolve_amp

BATCHES = (1, 16, 64)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of repeated ``size``^2 matmuls in ``dtype`` for about ``seconds``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    repeats, start = 0, time.perf_counter()
    while repeats < 2 or time.perf_counter() - start < seconds:
        a @ b
        repeats += 1
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def _random_actions(env: WorldModelVectorEnv, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, (env.num_envs, 7)).astype(np.float32)


def step_flops(env: WorldModelVectorEnv) -> tuple[int, dict[str, int]]:
    """FLOPs of one step right after a reset (no autoreset inside), total and by the
    top-level modules FlopCounterMode saw (dynamics passes, probe, tokenizer decode)."""
    rng = np.random.default_rng(1)
    env.reset(seed=1)
    with FlopCounterMode(display=False) as counter:
        env.step(_random_actions(env, rng))
    by_module = {
        name: sum(counts.values())
        for name, counts in counter.get_flop_counts().items()
        if name != "Global" and "." not in name
    }
    return counter.get_total_flops(), by_module


def vector_env_fps(env: WorldModelVectorEnv, seconds: float, warmup: int = 2) -> dict:
    """Sub-env frames/s of ``env`` stepping random actions for about ``seconds``."""
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(warmup):
        env.step(_random_actions(env, rng))
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        env.step(_random_actions(env, rng))
        steps += 1
    elapsed = time.perf_counter() - start
    return {"fps": env.num_envs * steps / elapsed, "steps": steps, "step_s": elapsed / steps}


def interleaved_speeds(
    wm: WorldModel,
    variants: dict[str, dict],
    sampler_steps: int | None,
    seconds: float,
    mujoco_fps: float,
    rounds: int = 5,
) -> dict:
    """frames/s of the vector env at each batch size for each variant (a name -> the env
    kwargs that make it, e.g. ``{"amp": "true"}``): ``rounds`` short timings per variant,
    the variants taking turns (in a rotating order) so that a drift in machine load hits
    all alike; the median, and every round's figure, which show the noise."""
    names = list(variants)
    result: dict = {name: {} for name in names}
    for n in BATCHES:
        envs = {
            name: WorldModelVectorEnv(
                num_envs=n, world_model=wm, sampler_steps=sampler_steps, **kwargs
            )
            for name, kwargs in variants.items()
        }
        runs: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runs[name].append(vector_env_fps(envs[name], seconds / rounds)["fps"])
        for name, fps in runs.items():
            median = float(np.median(fps))
            result[name] |= {f"fps_b{n}": median, f"ratio_b{n}": median / mujoco_fps}
            result[name][f"fps_rounds_b{n}"] = fps
            envs[name].close()
    return result


def precision_speeds(
    wm: WorldModel, settings: list[str], sampler_steps: int | None, seconds: float, mujoco_fps
) -> dict:
    """``interleaved_speeds`` under each ``amp`` setting, each entry with what it resolved
    to (``bf16_autocast``)."""
    variants = {s: {"amp": s} for s in settings}
    result = interleaved_speeds(wm, variants, sampler_steps, seconds, mujoco_fps)
    return {s: {"bf16_autocast": resolve_amp(s)} | result[s] for s in settings}


def compile_speeds(
    wm: WorldModel, settings: list[str], sampler_steps: int | None, seconds: float, mujoco_fps
) -> dict:
    """The diffusion env eager and with ``compile=True`` side by side, under each ``amp``
    setting: ``{setting: {"eager": ..., "compiled": ..., "speedup_bN": ...}}``. Each
    compiled env is stepped until its compile is done before anything is timed."""
    result = {}
    for setting in settings:
        variants = {"eager": {"amp": setting}, "compiled": {"amp": setting, "compile": True}}
        speeds = interleaved_speeds(wm, variants, sampler_steps, seconds, mujoco_fps)
        speeds["bf16_autocast"] = resolve_amp(setting)
        for n in BATCHES:
            speeds[f"speedup_b{n}"] = speeds["compiled"][f"fps_b{n}"] / speeds["eager"][f"fps_b{n}"]
        result[setting] = speeds
    return result


def world_model_speed(
    wm: WorldModel, sampler_steps: int | None, seconds: float, mujoco_fps: float
) -> dict:
    """frames/s of the vector env at each batch size, and FLOPs of the largest one's step."""
    result: dict = {"checkpoint": str(wm.source), "amp": describe_amp("auto")}
    if wm.discrete:  # the other decoder, and the KV cache against recomputing
        other = "autoregressive" if wm.sampler == "parallel" else "parallel"
        alt = {}
        for n in BATCHES:
            env = WorldModelVectorEnv(num_envs=n, world_model=wm, sampler=other)
            alt[f"fps_b{n}"] = vector_env_fps(env, seconds)["fps"]
            alt[f"ratio_b{n}"] = alt[f"fps_b{n}"] / mujoco_fps
            env.close()
        result["decoders"] = {other: alt}
        result["kv_cache"] = kv_cache_speed(wm)
    for n in BATCHES:
        env = WorldModelVectorEnv(num_envs=n, world_model=wm, sampler_steps=sampler_steps)
        result["sampler"], result["sampler_steps"] = env.core.sampler, env.core.sampler_steps
        timing = vector_env_fps(env, seconds)
        result[f"fps_b{n}"] = timing["fps"]
        result[f"ratio_b{n}"] = timing["fps"] / mujoco_fps
        result[f"timed_steps_b{n}"] = timing["steps"]
        if n == BATCHES[-1]:
            flops, by_module = step_flops(env)
            result[f"gflop_per_step_b{n}"] = flops / 1e9
            result[f"mflop_per_frame_b{n}"] = flops / n / 1e6
            result[f"gflops_b{n}"] = flops / timing["step_s"] / 1e9
            result[f"gflop_per_step_by_module_b{n}"] = {k: v / 1e9 for k, v in by_module.items()}
        env.close()
    return result


def kv_cache_speed(wm: WorldModel, batches: tuple[int, ...] = (1, 16), repeats: int = 2) -> dict:
    """Token-by-token decoding of one frame with and without the KV cache: seconds per
    frame, speed-up, and the share of tokens both drew alike from generators with the same
    seed. In float32: under bf16 autocast the two paths round differently (different matmul
    shapes), so a near-tie between two tokens can go either way."""
    model, context = wm.dynamics, wm.dynamics.cfg.context
    result: dict = {"context_frames": context, "tokens_per_frame": model.cfg.tokens_per_frame}
    rng = np.random.default_rng(0)
    for b in batches:
        rows = rng.integers(0, len(wm.reset_frames), b)
        first = wm.encode(torch.from_numpy(wm.reset_frames[rows]))  # (B, h, w) indices
        tokens = first[:, None].repeat(1, context, 1, 1)
        actions = torch.from_numpy(rng.uniform(-1, 1, (b, context, 7)).astype(np.float32))
        timings, outs = {}, {}
        for name in ("cached", "uncached"):
            start = time.perf_counter()
            for _ in range(repeats):
                gen = torch.Generator().manual_seed(123)
                if name == "cached":
                    out = model.predict_next(tokens, actions, gen, sampler="autoregressive")
                else:
                    out = model.transformer.decode_frame_nocache(
                        tokens.flatten(2), actions, gen, temperature=model.cfg.temperature
                    )  # the release's temperature, as predict_next uses it
            timings[name] = (time.perf_counter() - start) / repeats
            outs[name] = out.reshape(b, -1)
        result[f"cached_s_b{b}"] = timings["cached"]
        result[f"uncached_s_b{b}"] = timings["uncached"]
        result[f"speedup_b{b}"] = timings["uncached"] / timings["cached"]
        same = (outs["cached"] == outs["uncached"]).float().mean().item()
        result[f"same_tokens_b{b}"] = same  # 1.0: identical; a float near-tie may flip one
    return result


def _table(results: dict) -> str:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing runs")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument(
        "--checkpoints",
        nargs="+",
        default=None,
        help="world-model releases: shipped names or directories (default: every shipped "
        "push model, one per backend)",
    )
    parser.add_argument(
        "--sampler-steps", type=int, default=None, help="override the checkpoint's default"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (default: one per usable core); 1 keeps timings sane when "
        "another job holds the cores",
    )
    parser.add_argument(
        "--amp",
        nargs="+",
        choices=["auto", "true", "false"],
        default=None,
        help="amp settings timed side by side (default: true false auto; auto alone with "
        "--quick, which skips the precision section)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the diffusion env with compile=True beside eager, under each forced "
        "amp setting (the first steps compile: about a minute more per setting)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    set_torch_threads(args.threads)
    torch.manual_seed(0)
    # Load every model first: a bad checkpoint fails before anything is timed.
    names = args.checkpoints or shipped_world_models("tabletop-push")
    models = [load_world_model(c) for c in names]
    settings = args.amp or (["auto"] if args.quick else ["true", "false", "auto"])
    results: dict = {"quick": args.quick, "machine": machine_info()}
    results["mujoco_fps"] = env_frames_per_s(1, 500 if args.quick else 3000, 64)
    results["matmul_gflops_fp32"] = matmul_gflops(torch.float32)
    # Emulated bf16 runs under 1 GFLOP/s: a 2048^2 matmul would take 20 s there.
    results["matmul_bf16_size"] = 2048 if bf16_support().native else 512
    results["matmul_gflops_bf16"] = matmul_gflops(torch.bfloat16, results["matmul_bf16_size"])
    seconds = 3.0 if args.quick else 15.0
    results["backends"] = [wm.backend for wm in models]
    for wm in models:
        speed = world_model_speed(wm, args.sampler_steps, seconds, results["mujoco_fps"])
        results[wm.backend] = speed
    if settings != ["auto"]:
        results["precision"] = {s: {} for s in settings}
        for wm in models:
            speeds = precision_speeds(
                wm, settings, args.sampler_steps, seconds, results["mujoco_fps"]
            )
            for s in settings:
                results["precision"][s]["bf16_autocast"] = speeds[s].pop("bf16_autocast")
                results["precision"][s][wm.backend] = speeds[s]
    diffusion = [wm for wm in models if not wm.discrete]
    if args.compile and diffusion:
        compile_settings = sorted({s for s in settings if s != "auto"}) or ["auto"]
        results["compile"] = compile_speeds(
            diffusion[0], compile_settings, args.sampler_steps, seconds, results["mujoco_fps"]
        )
    table = _table(results)
    (args.out / "env_speed.json").write_text(json.dumps(results, indent=2))
    (args.out / "env_speed.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
