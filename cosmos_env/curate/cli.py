"""``python -m cosmos_env curate SRC DST [key=value ...]``: positional paths, Hydra overrides."""

from __future__ import annotations

import json


def curate_command(args: list[str]) -> int:
    """Parse ``SRC DST`` and the overrides, run the pipeline, print its summary."""
    from cosmos_env.config import load_config
    from cosmos_env.curate.config import CurateConfig
    from cosmos_env.curate.pipeline import curate

    paths = [a for a in args if "=" not in a]
    if len(paths) != 2:
        raise ValueError(
            "usage: python -m cosmos_env curate SRC DST [executor=local|ray] [key=value ...]; "
            f"got {len(paths)} paths: {paths}"
        )
    overrides = [a for a in args if "=" in a] + [f"src={paths[0]}", f"dst={paths[1]}"]
    cfg = load_config("curate", CurateConfig, overrides)
    print(json.dumps(curate(cfg), indent=2))
    return 0
