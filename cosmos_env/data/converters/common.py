"""What every converter shares: a resumable loop from source items into one episode store,
with a progress bar and a closing summary of what was converted and what was skipped, and
why.

A converter lists its source items (one per episode, each with a stable ``source_id``,
e.g. a trajectory's relative path) and a loader that turns one item into an episode dict
or raises ``SkipItem`` with the reason. ``convert_items`` appends the episodes in order.
Resuming after an interruption re-opens the store and skips every item whose source id is
already committed, so nothing is converted twice and nothing is lost; the store reads as
complete only once every item has been tried (``EpisodeStore.finalize``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cosmos_env.data.layout import StoreError
from cosmos_env.data.store import EpisodeStore


class SkipItem(Exception):
    """Raised by a loader: this item cannot be converted; the message says why."""


@dataclass
class SourceItem:
    """One episode's worth of source data: ``source_id`` is stable across runs (it is
    what resuming matches on); ``load`` returns the episode (a dict of time-first arrays,
    as ``EpisodeStore.append_episode`` takes it), its instruction and a list of warnings
    (problems that did not stop the conversion, e.g. a missing instruction file), or
    raises ``SkipItem``."""

    source_id: str
    load: Callable[[], tuple[Mapping[str, np.ndarray], str, list[str]]]


@dataclass
class ConversionSummary:
    """What a conversion did: episodes and frames written in this run, episodes already
    there from an earlier run, and every skipped item with its reason."""

    store: Path
    episodes: int = 0
    frames: int = 0
    resumed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.store}: {self.episodes} episodes, {self.frames} frames converted"
            + (f" ({self.resumed} already there from an earlier run)" if self.resumed else "")
            + f"; {len(self.skipped)} skipped, {len(self.warnings)} warnings"
        ]
        lines += [f"  skipped {source}: {reason}" for source, reason in self.skipped]
        lines += [f"  warning {source}: {text}" for source, text in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "store": str(self.store),
            "episodes": self.episodes,
            "frames": self.frames,
            "resumed": self.resumed,
            "skipped": [{"source_id": s, "reason": r} for s, r in self.skipped],
            "warnings": [{"source_id": s, "warning": w} for s, w in self.warnings],
        }


def convert_items(
    items: Iterable[SourceItem],
    dst: str | Path,
    create_store: Callable[[Path], EpisodeStore],
    total: int | None = None,
    desc: str = "convert",
) -> ConversionSummary:
    """Append every item's episode to the store at ``dst`` and finalize it.

    ``create_store(path)`` makes a new, empty store when ``dst`` does not exist yet; an
    existing store at ``dst`` is resumed (an incomplete one) or extended (a complete one),
    skipping items whose source id it already holds. Items whose loader raises
    ``SkipItem`` are listed in the summary and the rest go on. Raises ``StoreError`` when
    no episode at all ends up in the store."""
    dst = Path(dst)
    if dst.exists():
        store = EpisodeStore.open(dst, "a")
        done = {store.source_id(i) for i in range(store.n_episodes)}
    else:
        store, done = create_store(dst), set()
    summary = ConversionSummary(dst, resumed=len(done))
    for item in tqdm(items, total=total, desc=desc, unit="episode"):
        if item.source_id in done:
            continue
        try:
            episode, instruction, warnings = item.load()
        except SkipItem as reason:
            summary.skipped.append((item.source_id, str(reason)))
            continue
        summary.warnings += [(item.source_id, w) for w in warnings]
        store.append_episode(episode, instruction=instruction, source_id=item.source_id)
        done.add(item.source_id)
        summary.episodes += 1
        summary.frames += len(next(iter(episode.values())))
    if store.n_episodes == 0:
        raise StoreError(
            f"nothing converted into {dst}: every item was skipped\n{summary}"
            if summary.skipped
            else f"nothing converted into {dst}: the source has no items"
        )
    store.finalize()
    return summary
