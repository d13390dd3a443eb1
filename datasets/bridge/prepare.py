"""Convert a downloaded Bridge V2 tree (raw or numpy layout) into an episode store.

python datasets/bridge/prepare.py SRC [--out datasets/bridge/data/bridge.zarr]
                                      [--image-size 64] [--camera images0]
                                      [--layout auto|raw|numpy]

Nothing is downloaded: this machine reaches no data host, so fetch the data by hand first
(see datasets/bridge/README.md). Re-running with the same --out resumes an interrupted
conversion (trajectories already in the store are not converted again).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cosmos_env.data.converters.bridge import convert_bridge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="the unpacked raw tree or a folder of out.npy")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "bridge.zarr")
    parser.add_argument("--image-size", type=int, default=64, help="square frame side, pixels")
    parser.add_argument("--camera", default="images0", help="images0 (fixed over-the-shoulder)")
    parser.add_argument("--layout", choices=("auto", "raw", "numpy"), default="auto")
    parser.add_argument("--summary", type=Path, help="also write the summary here as JSON")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = convert_bridge(args.src, args.out, args.image_size, args.camera, args.layout)
    print(summary)
    if args.summary:
        args.summary.write_text(json.dumps(summary.to_dict(), indent=2))


if __name__ == "__main__":
    main()
