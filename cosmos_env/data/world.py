"""The World protocol: what a world with a simulator gives the generic layers, and how a
world travels as data.

A store's attrs and a release's ``config.json`` describe their world as
``{"entry_point": "package.module:factory", "kwargs": {...}}``; `load_world` imports the
factory by name, as Gymnasium's registry does with string entry points. So the envs score
predicted states with the world's own functions without importing any world, and a
researcher's own world works the same way as the shipped ones. A store-only world (Bridge,
1X: data without a simulator) has no description; its envs score with learned heads.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.state_spec import StateSpec
from cosmos_env.data.store import EpisodeStore, StoreError


@runtime_checkable
class World(Protocol):
    """A world with a simulator.

    ``reward`` / ``success`` / ``terminated`` are vectorised functions of states (N, S) in
    the world's units (``state_spec``) and actions (N, A) in the action spec's physical
    units; each ``has_*`` says whether the world defines it (else an env uses its learned
    head). ``reset`` returns a rendered first frame uint8 (H, W, 3) and its state (S,).
    """

    name: str
    action_spec: ActionSpec
    state_spec: StateSpec
    max_episode_steps: int
    has_reward: bool
    has_success: bool
    has_termination: bool

    def describe(self) -> dict[str, Any]:
        """``{"entry_point": "module:factory", "kwargs": {...}}``: rebuilds this world."""
        ...

    def reward(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray
    ) -> np.ndarray:
        """Reward (N,) of arriving at ``next_states`` after ``actions`` from ``states``."""
        ...

    def success(self, states: np.ndarray) -> np.ndarray:
        """Task solved in each state: bool (N,)."""
        ...

    def terminated(self, states: np.ndarray) -> np.ndarray:
        """Episode ends in each state (failure or success, as the simulator's env does)."""
        ...

    def make_env(self, image_size: int, **kwargs: Any) -> Any:
        """The simulator's Gymnasium env, ``render_mode="rgb_array"`` at ``image_size``."""
        ...

    def reset(self, seed: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A live reset of the simulator: first frame uint8 (H, W, 3) and state (S,)."""
        ...


def check_description(description: Any, where: str) -> dict[str, Any]:
    """``description`` as ``{"entry_point": str, "kwargs": dict}``, or a ValueError
    naming ``where`` it came from."""
    if not isinstance(description, Mapping) or set(description) - {"entry_point", "kwargs"}:
        raise ValueError(
            f"{where}: a world is described as {{'entry_point': 'module:factory', "
            f"'kwargs': {{...}}}}, got {description!r}"
        )
    entry = description.get("entry_point")
    if not isinstance(entry, str) or entry.count(":") != 1:
        raise ValueError(f"{where}: world entry_point must be 'module:factory', got {entry!r}")
    kwargs = description.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{where}: world kwargs must be a mapping, got {kwargs!r}")
    return {"entry_point": entry, "kwargs": dict(kwargs)}


def load_world(description: Mapping[str, Any] | None, where: str = "world") -> World | None:
    """The world ``description`` names (None for a store-only world). The factory is
    imported by name and called with the kwargs; what it returns must be a `World`."""
    if description is None:
        return None
    description = check_description(description, where)
    module_name, attr = description["entry_point"].split(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"{where}: cannot import world entry point {description['entry_point']!r}: {e}"
        ) from e
    world = factory(**description["kwargs"])
    if not isinstance(world, World):
        raise TypeError(
            f"{where}: {description['entry_point']} returned {type(world).__name__}, which "
            "lacks parts of the World protocol (cosmos_env.data.world.World)"
        )
    return world


@dataclass(frozen=True)
class WorldInfo:
    """The world a release was trained on: its ``name`` (e.g. ``tabletop-push``,
    ``gym-Reacher-v5``), the ``description`` that rebuilds it (``data.world.load_world``;
    None for a store-only world), the episode time limit, and what actions and states
    mean."""

    name: str
    description: dict | None
    max_episode_steps: int
    action_spec: ActionSpec
    state_spec: StateSpec

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "max_episode_steps": self.max_episode_steps,
            "action_spec": self.action_spec.to_dict(),
            "state_spec": self.state_spec.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> WorldInfo:
        return cls(
            str(d["name"]),
            d.get("description"),
            int(d["max_episode_steps"]),
            ActionSpec.from_dict(d["action_spec"]),
            StateSpec.from_dict(d["state_spec"]),
        )


def store_world(paths: Sequence[str | Path]) -> WorldInfo:
    """The world the stores at ``paths`` were recorded in: they must share its name, action
    spec and state spec (a model learns one world); the time limit is their longest
    episode's number of steps."""
    stores = [EpisodeStore.open(p) for p in paths]
    first = stores[0]
    for store in stores[1:]:
        for what in ("world", "action_spec", "state_spec"):
            if getattr(store, what) != getattr(first, what):
                raise StoreError(
                    f"{store.path} and {first.path} differ in {what}: a world model learns "
                    "one world; train on stores of one world"
                )
    steps = max(int(np.diff(np.r_[0, s.episode_ends]).max()) for s in stores) - 1
    return WorldInfo(
        first.world, first.world_description, max(steps, 1), first.action_spec, first.state_spec
    )
