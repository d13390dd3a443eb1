"""The group attrs of an `EpisodeStore`: building them at `create` (checked, JSON-ready)
and reading the state spec and world description back. Internal: use `EpisodeStore`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmos_env.data import layout
from cosmos_env.data.layout import FORMAT_VERSION, WRITING, StoreError
from cosmos_env.data.spec import ActionSpec, FeatureSpec
from cosmos_env.data.state_spec import StateSpec


def _check_description(description: Any, where: str) -> dict[str, Any]:
    # imported here: data.world imports the store (store_world), so not at module level
    from cosmos_env.data.world import check_description

    return check_description(description, where)


def default_state_spec(state: FeatureSpec) -> StateSpec:
    """The spec of a state nobody described: one 1-d "other" slot per dim, named by the
    ``state`` feature's names, else ``s0 .. s{S-1}``."""
    size = int(state.shape[0]) if state.shape else 1
    names = state.names if state.names and len(state.names) == size else None
    return StateSpec.flat(names or tuple(f"s{i}" for i in range(size)))


def group_attrs(
    features: Mapping[str, FeatureSpec],
    action_spec: ActionSpec,
    fps: float,
    world: str,
    camera: dict | None,
    robot: str,
    extra: dict | None,
    state_spec: StateSpec | None,
    world_description: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The attrs of a new store (status "writing"); ValueError when the state spec does not
    fit the ``state`` feature, the world description is malformed, or anything is not
    JSON-serialisable."""
    state = features["state"]
    if state_spec is None:
        state_spec = default_state_spec(state)
    elif not isinstance(state_spec, StateSpec):
        raise ValueError(f"state_spec must be a StateSpec, got {type(state_spec).__name__}")
    _check_dim(state_spec, state)
    if world_description is not None:
        world_description = _check_description(world_description, "world_description")
    attrs = {
        "format_version": FORMAT_VERSION,
        "status": WRITING,
        "schema": {k: s.to_dict() for k, s in features.items()},
        "action_spec": action_spec.to_dict(),
        "state_spec": state_spec.to_dict(),
        "world_description": world_description,
        "fps": float(fps),
        "world": str(world),
        "camera": dict(camera or {}),
        "robot": str(robot),
        "extra": dict(extra or {}),
        "integrity": dict(layout.INTEGRITY),
    }
    try:
        json.dumps(attrs, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"camera/attrs/world_description must be JSON-serialisable: {e}") from e
    return attrs


def read_state_spec(attrs: Mapping[str, Any], state: FeatureSpec) -> StateSpec | None:
    """The stored state spec, or None for a store written before state specs. A malformed
    one, or one whose dim is not the ``state`` feature's size, raises ValueError (or
    TypeError/KeyError), which `EpisodeStore.open` reports as a corrupt store."""
    stored = attrs.get("state_spec")
    if stored is None:
        return None
    spec = StateSpec.from_dict(stored)
    _check_dim(spec, state)
    return spec


def _check_dim(spec: StateSpec, state: FeatureSpec) -> None:
    state_dim = int(state.shape[0]) if state.shape else 1
    if spec.dim != state_dim:
        raise ValueError(
            f"state_spec has {spec.dim} dims ({', '.join(s.name for s in spec.slots)}) but "
            f"the 'state' feature has {state_dim} (shape {state.shape}); they must match"
        )


def read_world_description(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored world description, or None (a store-only world, or an older store)."""
    stored = attrs.get("world_description")
    return None if stored is None else _check_description(stored, "store attrs world_description")


def no_state_spec_error(path: Path) -> StoreError:
    """The error of `EpisodeStore.state_spec` on a store written before state specs."""
    return StoreError(
        f"episode store {path} has no state spec (written by an older cosmos-env): re-record "
        "it (python -m cosmos_env generate ...) or convert it again, so that its attrs say "
        "what each state dim is"
    )
