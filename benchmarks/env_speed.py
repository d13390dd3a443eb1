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
from env_speed_tables import BATCHES, speed_table
from gt_env_speed import env_frames_per_s
from torch.utils.flop_counter import FlopCounterMode

from cosmos_env.dynamics.release import WorldModel, load_world_model, shipped_world_models
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.machine import machine_info, set_torch_threads
from cosmos_env.precision import bf16_support, describe_amp, resolve_amp


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
        states = cond = None
        if model.state_dynamics is not None:  # a track model: the reset state throughout
            state = torch.from_numpy(wm.reset_states[rows]).float()
            states = state[:, None].repeat(1, context + 1, 1)
            cond = model.conditioning(model.standardise_state(states))
        timings, outs = {}, {}
        for name in ("cached", "uncached"):
            start = time.perf_counter()
            for _ in range(repeats):
                gen = torch.Generator().manual_seed(123)
                if name == "cached":
                    out = model.predict_next(
                        tokens, actions, gen, sampler="autoregressive", states=states
                    )
                else:
                    out = model.transformer.decode_frame_nocache(
                        tokens.flatten(2),
                        actions,
                        gen,
                        temperature=model.cfg.temperature,
                        cond=cond,
                    )  # the release's temperature, as predict_next uses it
            timings[name] = (time.perf_counter() - start) / repeats
            outs[name] = out.reshape(b, -1)
        result[f"cached_s_b{b}"] = timings["cached"]
        result[f"uncached_s_b{b}"] = timings["uncached"]
        result[f"speedup_b{b}"] = timings["uncached"] / timings["cached"]
        same = (outs["cached"] == outs["uncached"]).float().mean().item()
        result[f"same_tokens_b{b}"] = same  # 1.0: identical; a float near-tie may flip one
    return result


def _precision_section(
    models: list[WorldModel], settings: list[str], steps: int | None, seconds: float, mujoco: float
) -> dict:
    """amp setting -> {"bf16_autocast": whether it ran bf16, backend -> its speeds}."""
    section: dict = {s: {} for s in settings}
    for wm in models:
        speeds = precision_speeds(wm, settings, steps, seconds, mujoco)
        for s in settings:
            section[s]["bf16_autocast"] = speeds[s].pop("bf16_autocast")
            section[s][wm.backend] = speeds[s]
    return section


def _parser() -> argparse.ArgumentParser:
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
    return parser


def main() -> None:
    args = _parser().parse_args()
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
        results["precision"] = _precision_section(
            models, settings, args.sampler_steps, seconds, results["mujoco_fps"]
        )
    diffusion = [wm for wm in models if not wm.discrete]
    if args.compile and diffusion:
        compile_settings = sorted({s for s in settings if s != "auto"}) or ["auto"]
        results["compile"] = compile_speeds(
            diffusion[0], compile_settings, args.sampler_steps, seconds, results["mujoco_fps"]
        )
    table = speed_table(results)
    (args.out / "env_speed.json").write_text(json.dumps(results, indent=2))
    (args.out / "env_speed.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
