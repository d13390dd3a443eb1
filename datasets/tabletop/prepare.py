"""Generate the tabletop training stores: each task at several expert noise levels.

python datasets/tabletop/prepare.py [--episodes N] [--tasks push ...] [--noise 0 0.3 ...]
                                    [--out DIR] [--workers W] [--overwrite]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.generate import generate

NOISE_LEVELS = (0.0, 0.3, 0.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=300, help="per task and noise level")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=["push", "pick_place"])
    parser.add_argument("--noise", nargs="+", type=float, default=list(NOISE_LEVELS))
    parser.add_argument("--overwrite", action="store_true", help="replace existing stores")
    args = parser.parse_args()
    for task in args.tasks:
        for i, noise in enumerate(args.noise):
            overrides = [
                f"task={task}",
                f"noise={noise}",
                f"episodes={args.episodes}",
                f"workers={args.workers}",
                f"seed={i}",
                f"overwrite={args.overwrite}",
                f"out={args.out / f'{task}-noise{noise}.zarr'}",
            ]
            summary = generate(load_config("generate", GenerateConfig, overrides))
            print(json.dumps(summary))


if __name__ == "__main__":
    main()
