"""Minutes per stage of a multi-stage command (make-world-model, pretrain), summed over
every run it took: a killed command re-run goes on, and its record tells the full cost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class StageClock:
    """Times stages into ``record`` (JSON: ``{"minutes": {stage: minutes}, ...}``), adding
    the minutes that earlier runs recorded there; ``summary`` is written after each stage."""

    def __init__(self, record: Path, tag: str) -> None:
        self.record, self.tag = Path(record), tag
        earlier = json.loads(self.record.read_text()) if self.record.exists() else {}
        self._earlier: dict[str, float] = earlier.get("minutes", {})
        self.summary: dict[str, Any] = {"minutes": {}}

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args)
        minutes = self._earlier.get(name, 0.0) + (time.perf_counter() - start) / 60
        self.summary["minutes"][name] = minutes
        print(f"[{self.tag}] {name}: {minutes:.1f} min (all runs)", flush=True)
        self.write()
        return result

    def write(self) -> None:
        self.record.write_text(json.dumps(self.summary, indent=2) + "\n")

    def minutes_text(self) -> str:
        return ", ".join(f"{k} {v:.1f} min" for k, v in self.summary["minutes"].items())
