"""Data-parallel training throughput: ``benchmarks/ddp_speed.py [--quick] --out DIR`` writes
``DIR/ddp_speed.json`` and ``.md``.

The same tokenizer training (CI8x8 on 64x64 tabletop frames, a fixed number of steps at
one global batch) run side by side on this machine: one process with every usable core
as torch threads, then ``torchrun --standalone --nproc_per_node=N`` (N = 2 by default),
each process with its share of the cores and ``batch / N`` of the batch. Reports steps/s,
frames/s, the ratio to one process and the held-out PSNR each run ends with.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.eval.media import markdown_table
from cosmos_env.generate import generate
from cosmos_env.machine import machine_info, machine_line

TRAIN = """
import json, sys
from cosmos_env.distributed import ranks
from cosmos_env.tokenizer.train import train_tokenizer
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig
from cosmos_env.config import load_config

data, out, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
overrides = ["tokenizer=CI8x8", f"data={data}", f"out={out}", f"batch_size={batch}",
             f"steps={steps}", "eval_every=1000000", "save_every=1000000", "eval_frames=64"]
cfg = load_config("train_tokenizer", TrainTokenizerConfig, overrides)
result = train_tokenizer(cfg)
if ranks().main:
    print("RESULT " + json.dumps(result))
"""

LAUNCH = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_PORT")


def run(processes: int, script: Path, data: Path, out: Path, batch: int, steps: int) -> dict:
    """One training run, ``processes`` of them under torchrun (1: plain python)."""
    command = [sys.executable, str(script)]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc_per_node={processes}", str(script)]
    per_process = batch // processes
    command += [str(data), str(out), str(per_process), str(steps)]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{processes}-process run failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    seconds = result["wall_minutes"] * 60
    return {
        "processes": processes,
        "batch_per_process": per_process,
        "steps": result["steps"],
        "seconds": seconds,
        "steps_per_s": result["steps"] / seconds,
        "frames_per_s": result["steps"] * batch / seconds,
        "psnr": result["psnr"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="the global batch")
    parser.add_argument("--steps", type=int, default=None, help="default 150 (quick: 20)")
    args = parser.parse_args()
    if args.batch % args.processes:
        raise SystemExit(f"--batch {args.batch} is not divisible by {args.processes} processes")
    steps = args.steps or (20 if args.quick else 150)
    results: dict = {"quick": args.quick, "machine": machine_info(), "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = [f"out={tmp / 'data' / 'push.zarr'}", "episodes=8", "workers=1"]
        generate(load_config("generate", GenerateConfig, overrides))
        script = tmp / "train.py"
        script.write_text(TRAIN)
        runs = [
            run(n, script, tmp / "data", tmp / f"run{n}", args.batch, steps)
            for n in (1, args.processes)
        ]
    for r in runs:
        r["ratio_to_one_process"] = r["steps_per_s"] / runs[0]["steps_per_s"]
    results["runs"] = runs
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ddp_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    header = ["processes", "batch each", "steps", "steps/s", "frames/s", "ratio", "PSNR"]
    keys = ["processes", "batch_per_process", "steps", "steps_per_s", "frames_per_s"]
    rows = [[r[k] for k in keys] + [r["ratio_to_one_process"], r["psnr"]] for r in runs]
    text = (
        f"CI8x8 tokenizer training, global batch {args.batch}, one process against "
        f"torchrun with {args.processes}, side by side.\n\n{markdown_table(header, rows)}\n\n"
        f"{machine_line(results['machine'])}\n"
    )
    (args.out / "ddp_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
