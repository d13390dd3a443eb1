"""The world-model backends, in one registry: what ``backend=`` of the envs and
``train-dynamics dynamics=NAME`` choose, the ``dynamics.kind`` a release's config.json
records, and where each backend's config, model, trainer and training config live.

Classes are named by ``module:attribute`` and imported when first used (LeRobot's
registry of lazily imported classes), so reading the registry imports no model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Backend:
    """One world-model backend and the places its parts live."""

    name: str  # backend= of the envs; the dynamics=NAME config group of train-dynamics
    kind: str  # config.json's dynamics.kind
    config: str  # module:class of its dynamics config (``from_dict``)
    model: str  # module:class of its model, built from that config
    trainer: str  # module:function that trains it from its training config
    train_config: str  # module:class of its training config
    train_conf: str  # conf/<name>.yaml its training config is composed from

    def load(self, part: str) -> Any:
        """The class or function named by field ``part`` (e.g. "model"), imported now."""
        module, attribute = getattr(self, part).split(":")
        return getattr(importlib.import_module(module), attribute)


BACKENDS: dict[str, Backend] = {
    "diffusion": Backend(
        "diffusion",
        "diffusion",
        "cosmos_env.dynamics.diffusion.config:DiffusionConfig",
        "cosmos_env.dynamics.diffusion.model:LatentDynamics",
        "cosmos_env.dynamics.diffusion.train:train_dynamics",
        "cosmos_env.dynamics.diffusion.train_config:TrainDynamicsConfig",
        "train_dynamics",
    ),
    "ar": Backend(
        "ar",
        "autoregressive",
        "cosmos_env.dynamics.autoregressive.config:ARConfig",
        "cosmos_env.dynamics.autoregressive.model:TokenDynamics",
        "cosmos_env.dynamics.autoregressive.train:train_ar",
        "cosmos_env.dynamics.autoregressive.train_config:TrainARConfig",
        "train_ar",
    ),
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a ValueError naming the known ones otherwise."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} unknown; choose from {sorted(BACKENDS)}")
    return BACKENDS[name]


def backend_of_kind(kind: str) -> Backend:
    """The backend whose releases record ``dynamics.kind == kind``; KeyError if none."""
    for backend in BACKENDS.values():
        if backend.kind == kind:
            return backend
    raise KeyError(f"dynamics kind {kind!r}; known: {sorted(b.kind for b in BACKENDS.values())}")
