"""``python -m cosmos_env curate SRC DST``'s configuration: one dataclass per stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from cosmos_env.curate.dedup import DedupConfig
from cosmos_env.curate.filters import FilterConfig
from cosmos_env.curate.split import SplitConfig


@dataclass
class CurateConfig:
    """Where from and to, how to run, and each stage's settings (conf/curate.yaml)."""

    src: str = "???"  # a folder of videos (with optional sidecar JSON), or a LeRobot export
    dst: str = "???"  # the curated output: shards/, clips.jsonl, report.{json,md}, PNGs
    executor: str = "local"  # local | ray
    workers: int = 0  # 0: one per usable core (at most one per video)
    captioner: str = "metadata"  # or package.module:factory
    guard: bool = True  # pixelate faces in the frames written to the shards
    length_buckets: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    split: SplitConfig = field(default_factory=SplitConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
