"""Does a world model rank policies as its simulator does, for any world with one?
``benchmarks/world_ranking.py --checkpoint DIR [--quick] [--instructions T ...] --out DIR``
writes ``DIR/world_ranking_<world>.json`` and ``.md`` (``_instructed`` with instructions:
an instructed world's episodes are told them in turn, held-out ones included).

A graded suite: the world's scripted expert at noise 0, 0.25, 0.5, 0.75 and 1 (1 is random
actions), and the zero action. Each policy runs ``episodes`` full episodes (the world's time
limit) from the same seeded initial states in the simulator and in the world model (reset
from the simulator's first frames and states, ``reset_source="frames"``), with the same
policy noise in both; the score is the mean return and, where the world has success, the
success rate. Reported: Pearson r, Spearman rho and MMRV of the scores across policies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cosmos_env.dynamics.release import WorldModel, load_world_model
from cosmos_env.envs.vector_env import WorldModelVectorEnv
from cosmos_env.eval.compare import ANY_INSTRUCTION, HELD_OUT_SEED, world_of
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.policy_ranking import mmrv, pearson, spearman
from cosmos_env.generate import episode_seed
from cosmos_env.guardrails.text import guard_text
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.sim.recorder import read_state
from cosmos_env.sim.worlds import scripted_policy

NOISES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _scripted(world, noise: float):
    return lambda seed: scripted_policy(world, noise, seed)


def suite(world, noise_levels=NOISES) -> dict:
    """Policy name -> factory(seed) of state (S,) -> action in the simulator's own units."""
    policies = {f"scripted-{n}": _scripted(world, n) for n in noise_levels}
    dims = world.action_spec.dim
    policies["zero"] = lambda seed: lambda state: np.zeros(dims, np.float32)
    return policies


def in_simulator(
    world, make, seeds: list[int], steps: int, size: int, instructions: list[str] | None = None
) -> dict:
    """Returns, success and first frames/states of ``make(seed)``'s episodes in the
    simulator (one env, episodes one after another); with ``instructions``, episode i is
    told instruction i modulo their number (its state carries it to the world model)."""
    env = world.make_env(size, **(ANY_INSTRUCTION if instructions else {}))
    low, high = env.action_space.low, env.action_space.high
    out = {"returns": [], "success": [], "frames": [], "states": []}
    for i, seed in enumerate(seeds):
        act = make(seed)
        options = {"instruction": instructions[i % len(instructions)]} if instructions else None
        _, info = env.reset(seed=seed, options=options)
        state = read_state(env, info)
        out["frames"].append(np.asarray(env.render(), np.uint8))
        out["states"].append(state)
        total, solved = 0.0, False
        for _ in range(steps):
            action = np.clip(act(state), low, high).astype(env.action_space.dtype)
            _, reward, _, _, info = env.step(action)
            state, total = read_state(env, info), total + float(reward)
            solved |= bool(info.get("is_success", False))
        out["returns"].append(total)
        out["success"].append(solved)
    env.close()
    return {k: np.asarray(v) for k, v in out.items()}


def in_world_model(wm: WorldModel, make, seeds, steps, frames, states, low, high) -> dict:
    """The same policies in the world model's vector env, one row per episode, from the
    simulator's first frames and states."""
    env = WorldModelVectorEnv(
        len(seeds), world_model=wm, reset_source="frames", terminate_on_success=False,
        max_episode_steps=steps + 1,
    )  # fmt: skip
    acts = [make(seed) for seed in seeds]
    _, info = env.reset(seed=0, options={"frames": frames, "states": states})
    returns, solved = np.zeros(len(seeds)), np.zeros(len(seeds), bool)
    for _ in range(steps):
        native = np.stack(
            [np.clip(a(s), low, high) for a, s in zip(acts, info["state"], strict=True)]
        )
        normalised = (2 * (native - low) / (high - low) - 1).astype(np.float32)
        _, rewards, _, _, info = env.step(normalised)
        returns += rewards
        solved |= np.asarray(info["is_success"], bool)
    env.close()
    return {"returns": returns, "success": solved}


def rank(
    wm: WorldModel, episodes: int, steps: int | None = None, instructions: list[str] | None = None
) -> dict:
    """The suite's scores in both worlds over ``steps`` per episode (default: the world's
    time limit), and how well the world model's scores rank the policies; ``instructions``
    (an instructed world): the episodes' instructions, in turn (default: each reset's own)."""
    world = world_of(wm)
    if instructions and not hasattr(world, "instructed"):
        raise ValueError(f"world {wm.world.name!r} takes no instructions")
    for text in instructions or []:  # refused or unknown: an error before anything runs
        world.instructed(np.zeros((1, world.state_spec.dim)), [guard_text(text)])
    steps = steps or wm.world.max_episode_steps
    seeds = [episode_seed(HELD_OUT_SEED, i) for i in range(episodes)]
    probe = world.make_env(wm.image_size)
    low, high = probe.action_space.low.astype(np.float64), probe.action_space.high
    probe.close()
    rows = {}
    for name, make in tqdm(suite(world).items(), desc=f"rank {wm.world.name}", unit="policy"):
        sim = in_simulator(world, make, seeds, steps, wm.image_size, instructions)
        dream = in_world_model(wm, make, seeds, steps, sim["frames"], sim["states"], low, high)
        rows[name] = {
            "simulator_return": float(sim["returns"].mean()),
            "world_model_return": float(dream["returns"].mean()),
            "simulator_success": float(sim["success"].mean()),
            "world_model_success": float(dream["success"].mean()),
        }
    result = {"world": wm.world.name, "checkpoint": str(wm.source), "episodes": episodes}
    result["instructions"] = instructions
    result |= {"steps": steps, "policies": rows}
    for score in ("return", "success"):
        a = [r[f"world_model_{score}"] for r in rows.values()]
        b = [r[f"simulator_{score}"] for r in rows.values()]
        if world.has_success or score == "return":
            result[score] = {"pearson": pearson(a, b), "spearman": spearman(a, b)}
            result[score]["mmrv"] = mmrv(a, b)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a world-model release")
    parser.add_argument("--quick", action="store_true", help="8 episodes per policy")
    parser.add_argument("--episodes", type=int, default=None, help="default 50 (quick: 8)")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument(
        "--instructions", nargs="+", default=None, help="instructed worlds: told in turn"
    )
    args = parser.parse_args()
    set_torch_threads()
    wm = load_world_model(args.checkpoint)
    episodes = args.episodes or (8 if args.quick else 50)
    result = rank(wm, episodes, instructions=args.instructions) | {"machine": machine_info()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"world_ranking_{wm.world.name.replace(':', '-')}"
    stem += "_instructed" if args.instructions else ""
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    header = ["policy", "simulator return", "world-model return", "sim success", "WM success"]
    rows = [[name, *r.values()] for name, r in result["policies"].items()]
    scores = ", ".join(
        f"{k}: Pearson {v['pearson']:.3f}, Spearman {v['spearman']:.3f}, MMRV {v['mmrv']:.3f}"
        for k, v in result.items()
        if k in ("return", "success")
    )
    text = (
        f"Policy ranking in {result['world']} ({result['episodes']} episodes per policy, "
        f"{result['steps']} steps, same initial states"
        + (f"; instructions in turn: {'; '.join(args.instructions)}" if args.instructions else "")
        + f"): {scores}\n\n"
        f"{markdown_table(header, rows)}\n\n{machine_line(result['machine'])}\n"
    )
    (out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
