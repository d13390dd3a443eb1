"""``python -m cosmos_env convert|export ...``: positional command lines for moving data
in and out of the episode store (paths, not Hydra overrides: they are one-off jobs on
someone's files).

    python -m cosmos_env convert bridge SRC DST [--image-size 64] [--camera images0]
    python -m cosmos_env convert onex SRC DST [--image-size 64] [--version auto]
    python -m cosmos_env export lerobot STORE DST [--overwrite]
    python -m cosmos_env export minari STORE DATASET_ID

Each shows a progress bar and ends with a summary (episodes, frames, skipped items with
their reasons); a conversion killed midway resumes when run again with the same DST.
"""

from __future__ import annotations

import argparse


def _convert_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cosmos_env convert", description="convert robot data into a store"
    )
    formats = parser.add_subparsers(dest="format", required=True)
    sources = {
        "bridge": ("Bridge V2 (raw traj folders or numpy out.npy)", "a Bridge V2 directory"),
        "onex": ("1X world-model data (v1.1, v2.0, raw video)", "a 1X dataset directory"),
    }
    for name, (text, src) in sources.items():
        sub = formats.add_parser(name, help=text)
        sub.add_argument("src", help=src)
        sub.add_argument("dst", help="the store to write or resume (a .zarr directory)")
        sub.add_argument("--image-size", type=int, default=64)
        if name == "bridge":
            sub.add_argument("--camera", default="images0", help="camera folder (images0..)")
        else:
            sub.add_argument("--version", default="auto", help="auto | v1.1 | v2.0 | raw")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cosmos_env export", description="export a store for other tools"
    )
    formats = parser.add_subparsers(dest="format", required=True)
    lerobot = formats.add_parser("lerobot", help="LeRobot dataset v3.0 layout")
    lerobot.add_argument("store", help="an episode store (.zarr)")
    lerobot.add_argument("dst", help="the dataset directory to write")
    lerobot.add_argument("--overwrite", action="store_true", help="replace an existing dst")
    minari = formats.add_parser("minari", help="a Minari dataset (MINARI_DATASETS_PATH)")
    minari.add_argument("store", help="an episode store (.zarr)")
    minari.add_argument("dataset_id", help="e.g. cosmos_env/tabletop-push/expert-v0")
    return parser


def convert_command(argv: list[str]) -> dict:
    """Run ``convert FORMAT SRC DST``; returns the summary as a dict."""
    args = _convert_parser().parse_args(argv)
    if args.format == "bridge":
        from cosmos_env.data.converters.bridge import convert_bridge

        summary = convert_bridge(args.src, args.dst, image_size=args.image_size, camera=args.camera)
    else:
        from cosmos_env.data.converters.onex import convert_onex

        summary = convert_onex(args.src, args.dst, image_size=args.image_size, version=args.version)
    print(summary)
    return summary.to_dict()


def export_command(argv: list[str]) -> dict:
    """Run ``export FORMAT STORE DST``; returns the summary as a dict."""
    args = _export_parser().parse_args(argv)
    if args.format == "lerobot":
        from cosmos_env.data.exporters.lerobot import export_lerobot

        summary = export_lerobot(args.store, args.dst, overwrite=args.overwrite)
    else:
        from cosmos_env.data.exporters.minari import export_minari

        summary = export_minari(args.store, args.dataset_id)
    print(summary)
    return summary.to_dict()
