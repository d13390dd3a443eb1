"""What every exporter shares: the closing summary, opening the source store with clear
errors, and publishing a finished output directory in one rename.

An export builds its output in a partial directory of its own next to the destination and
renames it into place only when everything is written, so an interrupted export never
leaves something at the destination that reads as complete. A run deletes only the partial
directory it made: another run's may still be in use.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cosmos_env.data.store import EpisodeStore

PathLike = str | Path


@dataclass
class ExportSummary:
    """What an export wrote: episodes and frames, where, and notes (choices made on the
    way, e.g. episodes left out and why)."""

    dst: str
    episodes: int = 0
    frames: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.dst}: {self.episodes} episodes, {self.frames} frames exported"]
        return "\n".join(lines + [f"  note: {note}" for note in self.notes])

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "dst": self.dst,
            "episodes": self.episodes,
            "frames": self.frames,
            "notes": list(self.notes),
        }


def open_source(store_path: PathLike, required: Iterable[str] = ("rgb", "state", "action")):
    """Open a complete episode store read-only, checking it holds the `required` keys.

    Raises `IncompleteStoreError` for a store whose writer did not finish, `StoreError` for
    a path that is not a store, and ValueError naming the missing keys.
    """
    store = EpisodeStore.open(store_path, "r")
    missing = [key for key in required if key not in store.features]
    if missing:
        raise ValueError(
            f"episode store {store.path} has no {missing} data; an export needs "
            f"{list(required)} (it has {list(store.features)})"
        )
    return store


@contextmanager
def partial_directory(parent: Path, name: str) -> Iterator[Path]:
    """A new hidden directory ``parent/.<name>.partial-XXXX`` for this run's output,
    deleted when the run ends (by then a finished export has been renamed away); a killed
    run leaves it behind, and no later run deletes what it did not make."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is meant to be read by all
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_destination(dst: Path, overwrite: bool, looks_like_output: str) -> None:
    """Refuse an existing `dst` unless ``overwrite=True``; even then refuse to replace a
    non-empty directory that lacks the file `looks_like_output` (relative to `dst`), so an
    export never deletes anything but an earlier export."""
    if not dst.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{dst} already exists; pass overwrite=True to replace it")
    if not dst.is_dir():
        raise FileExistsError(f"{dst} exists and is not a directory; refusing to replace it")
    if any(dst.iterdir()) and not (dst / looks_like_output).is_file():
        raise FileExistsError(
            f"{dst} is a non-empty directory without {looks_like_output}, so it is not an "
            "earlier export; refusing to delete it (choose another destination)"
        )


def publish(built: Path, dst: Path) -> None:
    """Move the finished directory `built` to `dst`, replacing an earlier export there.

    The old export is moved aside first and deleted only after the rename, so `dst` is
    always either the old export, briefly absent, or the new one.
    """
    old = dst.parent / f".{dst.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        dst.rename(old)
    built.rename(dst)
    if old.exists():
        shutil.rmtree(old)
