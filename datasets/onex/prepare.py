"""Convert a downloaded 1X world-model dataset directory into an episode store.

python datasets/onex/prepare.py SRC [--out DIR.zarr] [--image-size 64] [--version auto]

SRC is one split directory of 1X's release (e.g. data/train_v1.1, data/val_v2.0 or
data/train_v2.0_raw); nothing is downloaded (see README.md for how to get it). Re-running
after an interruption resumes the conversion.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosmos_env.data.converters.onex import VERSIONS, convert_onex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="a 1X split directory (v1.1, v2.0 or raw video)")
    parser.add_argument(
        "--out", type=Path, default=None, help="store path (default: data/<SRC name>.zarr here)"
    )
    parser.add_argument("--image-size", type=int, default=64, help="rgb side (raw video only)")
    parser.add_argument("--version", choices=("auto", *VERSIONS), default="auto")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    out = args.out or Path(__file__).parent / "data" / f"{args.src.resolve().name}.zarr"
    summary = convert_onex(args.src, out, image_size=args.image_size, version=args.version)
    print(json.dumps(summary.to_dict()) if args.json else summary)


if __name__ == "__main__":
    main()
