"""Exporters from the episode store to other robot-data formats: LeRobot v3.0 and Minari.

The exporters are imported lazily (Minari pulls in its own dependencies), so
``from cosmos_env.data.exporters import export_minari`` costs nothing until it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from cosmos_env.data.exporters.common import ExportSummary

__all__ = ["ExportSummary", "export_lerobot", "export_minari"]

_LAZY = {
    "export_lerobot": "cosmos_env.data.exporters.lerobot",
    "export_minari": "cosmos_env.data.exporters.minari",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
