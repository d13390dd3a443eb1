"""Every world with a world model, measured the same way: ``benchmarks/worlds.py [--quick]
--out DIR [--checkpoint WORLD=DIR ...] [--only WORLD ...]`` writes ``DIR/worlds.json`` and
``DIR/worlds.md``.

Per world (its per-world env id, or the name of a given checkpoint's world):

- frame fidelity on held-out episodes (seeds no training store uses): the world model and
  the simulator from the same first frame and state under the same actions (the world's
  scripted expert at ``NOISE``), open loop: ``psnr_h1``, ``psnr_mean_h1_16``, ``psnr_h16``
  and ``copy_last_psnr_h16`` (``cosmos_env.eval.compare``);
- ``reward_pearson`` (per step) and ``return_pearson`` (per episode) of the world model's
  reward against the simulator's on those steps, and ``success_agreement`` where the world
  has success;
- ``ratio_b64``: sub-env frames/s of the native vector env at batch 64 over the frames/s
  of one process of the world's simulator env (stepping random actions and rendering),
  measured one after the other in this run; ``ratio_b64_compiled`` the same with the env's
  ``compile=True`` (diffusion);
- ``reward_pearson_ci95``: the 95% interval of ``reward_pearson`` over resampled episodes.

Why ``EPISODES`` is large: a world's success bonus is a rare event in 16 steps of a noisy
expert, and the per-step reward correlation moves with every success, real or imagined; on
a few dozen episodes one imagined success decides it (the push card shows how much).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cosmos_env.dynamics.release import WorldModel, load_world_model, shipped_catalogue
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.eval.compare import HELD_OUT_SEED, compare, world_of
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.simulate import simulate
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.registration import WORLD_MODEL_IDS

NOISE, HORIZON, EPISODES = 0.5, 16, 512
KEYS = ("psnr_h1", "psnr_mean_h1_16", "psnr_h16", "copy_last_psnr_h16")
KEYS += ("reward_pearson", "return_pearson", "success_agreement")


def simulator_fps(wm: WorldModel, seconds: float) -> float:
    """Frames/s of one process of the world's simulator env: random actions, rendered."""
    env = world_of(wm).make_env(wm.image_size)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while steps < 10 or time.perf_counter() - start < seconds:
        action = rng.uniform(env.action_space.low, env.action_space.high)
        _, _, terminated, truncated, _ = env.step(action.astype(env.action_space.dtype))
        env.render()
        steps += 1
        if terminated or truncated:
            env.reset(seed=steps)
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def vector_fps(wm: WorldModel, batch: int, seconds: float, compile: bool = False) -> float:
    """Sub-env frames/s of the native world-model vector env at ``batch`` (``compile``:
    with its network compiled; the compile happens in the warm-up steps)."""
    env = WorldModelVectorEnv(batch, world_model=wm, terminate_on_success=False, compile=compile)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    shape = env.action_space.shape
    for _ in range(3 if compile else 1):  # warm-up
        env.step(rng.uniform(-1, 1, shape).astype(np.float32))
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        env.step(rng.uniform(-1, 1, shape).astype(np.float32))
        steps += 1
    elapsed = time.perf_counter() - start
    env.close()
    return batch * steps / elapsed


def measure(wm: WorldModel, episodes: int, seconds: float) -> dict:
    """One world's row: fidelity, reward agreement, speed ratio (see the module doc)."""
    world = world_of(wm)
    truth = simulate(world, "scripted", NOISE, episodes, HORIZON, HELD_OUT_SEED, wm.image_size)
    result, _ = compare(wm, truth, HELD_OUT_SEED, wm.sampler, wm.sampler_steps, world=world)
    summary = result["summary"]
    row = {k: summary[k] for k in KEYS if k in summary}
    row["gain_h16_db"] = summary["psnr_h16"] - summary["copy_last_psnr_h16"]
    row["reward_pearson_ci95"] = summary.get("reward_pearson_ci95")
    mujoco, b64 = simulator_fps(wm, seconds), vector_fps(wm, 64, seconds)
    row |= {"simulator_fps": mujoco, "fps_b64": b64, "ratio_b64": b64 / mujoco}
    if not wm.discrete:  # the same env with compile=True, timed right after
        row["ratio_b64_compiled"] = vector_fps(wm, 64, seconds, compile=True) / mujoco
    row |= {"checkpoint": str(wm.source), "world": wm.world.name, "episodes": episodes}
    row["score_sources"] = _sources(wm)
    return row


def _sources(wm: WorldModel) -> dict:
    from cosmos_env.envs.core import simulator_world
    from cosmos_env.envs.scoring import Scorer

    return Scorer(wm, simulator_world(wm)).sources


def targets() -> dict[str, str]:
    """Per-world env id -> its shipped diffusion checkpoint."""
    shipped = shipped_catalogue()
    return {
        env_id: shipped[world]["diffusion"]
        for env_id, (world, _) in WORLD_MODEL_IDS.items()
        if "diffusion" in shipped.get(world, {})
    }


def table(results: dict) -> str:
    header = ["world", "PSNR h1", "PSNR mean h1-16", "PSNR h16", "copy-last h16", "gain h16"]
    header += ["reward r [95% CI]", "return r", "success agree", "ratio b64"]
    header += ["ratio b64 compiled"]
    rows = []
    for name, r in results["worlds"].items():
        cells = [r[k] for k in KEYS[:4]] + [r["gain_h16_db"]]
        ci = r.get("reward_pearson_ci95")
        cells += [f"{r['reward_pearson']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")]
        cells += [r.get(k, "-") for k in KEYS[5:]] + [r["ratio_b64"]]
        cells += [r.get("ratio_b64_compiled", "-")]
        rows.append([name, *cells])
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 episodes, 2 s timings")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument("--episodes", type=int, default=None, help="default 512 (quick: 8)")
    parser.add_argument(
        "--checkpoint", action="append", default=[], help="NAME=DIR: add (or replace) a world"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="NAME: measure only these worlds"
    )
    args = parser.parse_args()
    set_torch_threads()
    episodes = args.episodes or (8 if args.quick else EPISODES)
    seconds = 2.0 if args.quick else 8.0
    runs = targets() | dict(item.split("=", 1) for item in args.checkpoint)
    unknown = sorted(set(args.only) - set(runs))
    if unknown:
        raise SystemExit(f"--only {unknown}: not among the worlds {sorted(runs)}")
    runs = {name: path for name, path in runs.items() if not args.only or name in args.only}
    results: dict = {"quick": args.quick, "machine": machine_info(), "noise": NOISE}
    results["horizon"], results["worlds"] = HORIZON, {}
    for name, checkpoint in runs.items():
        print(f"[worlds] {name}: {checkpoint}", flush=True)
        results["worlds"][name] = measure(load_world_model(checkpoint), episodes, seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "worlds.json").write_text(json.dumps(results, indent=2) + "\n")
    text = (
        f"World models vs their simulators: {episodes} held-out episodes per world (scripted "
        f"expert at noise {NOISE}), open loop for {HORIZON} steps; ratio b64 = vector env at "
        f"batch 64 over one simulator process, same run.\n\n{table(results)}\n\n"
        f"{machine_line(results['machine'])}\n"
    )
    (out / "worlds.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
