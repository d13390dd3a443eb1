"""Does an instruction model carry out what it is told? ``benchmarks/instructions.py
--checkpoint DIR [--quick] --out DIR2 [--guidance G] [--episodes N] [--instructions K]``
writes ``DIR2/instructions.json``, ``instructions.md`` and ``instructions.png``.

For every instruction of the instructed tabletop, seen in training or held out (its
combination of object and goal never shown), the world's scripted expert carries it out in
MuJoCo from seeded resets (seeds no training store uses), and the world model rolls the
same episodes out from the same first frame and state, told the instruction: mode (a), an
instruction->video model (``dynamics.actions=false``), imagines them from that alone; mode
(b), a model that also takes actions, follows the expert's. Per instruction and per group:

- ``instruction_following``: the share of world-model episodes in which the named task
  succeeds on the model's own state (its state track, or the probe's reading of its
  frames); ``expert``: the same share in MuJoCo;
- ``right_object``: the share of world-model episodes in which the named object is the
  one that moves most (put and push instructions; a reach instruction names the gripper);
- ``psnr_mean``: mean PSNR of the imagined frames against MuJoCo's over the horizon.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cosmos_env.dynamics.release import load_world_model
from cosmos_env.eval import report
from cosmos_env.eval.compare import ANY_INSTRUCTION, HELD_OUT_SEED, compare, world_of
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.simulate import simulate
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.sim.instructions import INSTRUCT_STEPS, Instruction, split_instructions
from cosmos_env.sim.state_layout import OBJECT_NAMES

METRICS = ("instruction_following", "expert", "right_object", "psnr_mean")
MODES = {
    "a": "mode (a): the first frame and the instruction, no actions",
    "b": "mode (b): the expert's actions and the instruction",
}


def right_object(instruction: Instruction, states: np.ndarray, spec) -> float | None:
    """Share of episodes (states (N, T, S)) whose named object moved furthest in the
    plane of all objects; None for an instruction that names the gripper."""
    if instruction.object not in OBJECT_NAMES:
        return None
    names = [n for n in OBJECT_NAMES if spec.has(f"{n}_pos")]
    slots = [spec.slot(f"{n}_pos") for n in names]
    moved = np.stack(
        [np.linalg.norm(states[:, -1, s][:, :2] - states[:, 0, s][:, :2], axis=-1) for s in slots],
        axis=1,
    )  # (N, objects)
    return float((moved.argmax(1) == names.index(instruction.object)).mean())


def measure(wm, world, instruction: Instruction, text: str, args) -> dict:
    """One instruction's row (see the module docstring)."""
    truth = simulate(
        world, "scripted", 0.0, args.episodes, args.horizon, HELD_OUT_SEED, wm.image_size,
        {"instruction": text}, ANY_INSTRUCTION,
    )  # fmt: skip
    result, pred = compare(wm, truth, HELD_OUT_SEED, wm.sampler, wm.sampler_steps, world=world,
                           guidance=args.guidance)  # fmt: skip
    states = np.concatenate([truth.states[:, :1], pred.states], axis=1)
    row = {
        "instruction": text,
        "instruction_following": float(pred.success.any(1).mean()),
        "expert": float(truth.success.any(1).mean()),
        "right_object": right_object(instruction, states, wm.world.state_spec),
        "psnr_mean": float(np.mean(result["per_horizon"]["psnr"])),
    }
    return row, (truth.frames[0], pred.frames[0], pred.recon[0])


def group_means(rows: list[dict]) -> dict:
    out = {}
    for key in METRICS:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    return out | {"instructions": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an instruction model's release")
    parser.add_argument("--quick", action="store_true", help="2 episodes, 16 steps")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument("--episodes", type=int, default=None, help="per instruction (8)")
    parser.add_argument("--horizon", type=int, default=None, help=f"steps ({INSTRUCT_STEPS})")
    parser.add_argument("--instructions", type=int, default=None, help="first K of each group")
    parser.add_argument("--guidance", type=float, default=1.0)
    args = parser.parse_args()
    args.episodes = args.episodes or (2 if args.quick else 8)
    args.horizon = args.horizon or (16 if args.quick else INSTRUCT_STEPS)
    set_torch_threads()
    wm = load_world_model(args.checkpoint)
    if wm.dynamics.text is None:
        raise SystemExit(f"{args.checkpoint} follows no instructions (dynamics.text=null)")
    world = world_of(wm)
    phrases = world.phrases()
    mode = "b" if wm.dynamics.cfg.actions else "a"
    results = {"machine": machine_info(), "mode": mode, "guidance": args.guidance, "groups": {}}
    results |= {"episodes": args.episodes, "horizon": args.horizon, "per_instruction": {}}
    sheets = []
    for group, instructions in zip(("seen", "held_out"), split_instructions(), strict=True):
        rows = []
        for instruction in instructions[: args.instructions]:
            row, frames = measure(wm, world, instruction, instruction.text(phrases), args)
            results["per_instruction"][instruction.key] = row | {"group": group}
            rows.append(row)
            sheets.append(frames)
        results["groups"][group] = group_means(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.json").write_text(json.dumps(results, indent=2) + "\n")
    header = ["group", "instructions", *METRICS]
    rows = [[g, r["instructions"], *(r[k] if r[k] is not None else "-" for k in METRICS)]
            for g, r in results["groups"].items()]  # fmt: skip
    text = (
        f"Instruction following of `{args.checkpoint}` ({MODES[mode]}): {args.episodes} "
        "episodes per "
        f"instruction, {args.horizon} steps, guidance {args.guidance}.\n\n"
        f"{markdown_table(header, rows)}\n\n{machine_line(results['machine'])}\n"
    )
    (out / "instructions.md").write_text(text)
    true, pred, recon = (np.stack(x) for x in zip(*sheets, strict=True))
    report.write_comparison_sheet(out / "instructions.png", true, pred, recon)
    print(text)


if __name__ == "__main__":
    main()
