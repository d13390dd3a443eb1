"""``python -m cosmos_env convert|export|verify|migrate ...``: positional command lines for
moving data in and out of the episode store and checking it (paths, not Hydra overrides:
they are one-off jobs on someone's files).

    python -m cosmos_env convert bridge SRC DST [--image-size 64] [--camera images0]
    python -m cosmos_env convert onex SRC DST [--image-size 64] [--version auto]
    python -m cosmos_env export lerobot STORE DST [--overwrite]
    python -m cosmos_env export minari STORE DATASET_ID
    python -m cosmos_env verify STORE
    python -m cosmos_env migrate SRC DST [--overwrite]

Conversions and exports show a progress bar and end with a summary (episodes, frames,
skipped items with their reasons); a conversion killed midway resumes when run again with
the same DST. ``verify`` prints one clean line, or one line per bad chunk, and exits 0 when
clean, 1 when something is bad, 2 when STORE is no store.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


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
    for sub in (lerobot, minari):
        sub.add_argument(
            "--no-face-guard",
            action="store_true",
            help="export frames as they are (by default faces are pixelated)",
        )
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

        guard = not args.no_face_guard
        summary = export_lerobot(args.store, args.dst, overwrite=args.overwrite, guard=guard)
    else:
        from cosmos_env.data.exporters.minari import export_minari

        summary = export_minari(args.store, args.dataset_id, guard=not args.no_face_guard)
    print(summary)
    return summary.to_dict()


def verify_command(argv: list[str]) -> int:
    """Run ``verify STORE``; returns the exit code (0 clean, 1 problems, 2 no store)."""
    parser = argparse.ArgumentParser(
        prog="python -m cosmos_env verify", description="check every chunk of a store"
    )
    parser.add_argument("store", help="an episode store (.zarr)")
    path = Path(parser.parse_args(argv).store)
    if not (path / "zarr.json").is_file():
        print(f"verify: {path} is not an episode store (no {path / 'zarr.json'})", file=sys.stderr)
        return 2
    from cosmos_env.data import EpisodeStore, NoChecksumWarning, StoreError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoChecksumWarning)  # it is the report's first note
        try:
            report = EpisodeStore.open(path, allow_incomplete=True).verify()
        except StoreError as e:  # damaged beyond opening: the error names what
            print(f"{path}: unreadable: {e}")
            return 1
    for line in report.notes:
        print(f"{path}: note: {line}", file=sys.stderr)
    for line in report.lines():
        print(line)
    if not report.ok:
        print(
            f"{path}: {len(report.problems)} problems ({report.chunks} chunks checked): "
            "re-generate or re-convert the store, or restore it from a copy",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def migrate_command(argv: list[str]) -> int:
    """Run ``migrate SRC DST``: a copy of SRC with checksums at DST; returns the exit code
    (1, with the reason on one line, when SRC cannot be migrated)."""
    parser = argparse.ArgumentParser(
        prog="python -m cosmos_env migrate",
        description="copy a store without checksums into a new store with them",
    )
    parser.add_argument("src", help="the store to copy (complete)")
    parser.add_argument("dst", help="the new store")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dst")
    args = parser.parse_args(argv)
    from cosmos_env.data import StoreError
    from cosmos_env.data.migrate import migrate_store

    try:
        summary = migrate_store(Path(args.src), Path(args.dst), args.overwrite)
    except StoreError as e:
        print(f"migrate: {e}", file=sys.stderr)
        return 1
    print(
        f"{summary['src']} -> {summary['dst']}: {summary['episodes']} episodes, "
        f"{summary['frames']} frames, with checksums"
    )
    return 0
