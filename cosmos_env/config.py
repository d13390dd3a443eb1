"""Hydra configs as typed dataclasses: compose YAML from ``cosmos_env/conf`` with command-line
overrides, then validate against the dataclass so that unknown keys and wrong types fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

T = TypeVar("T")


@dataclass
class WorldConfig:
    name: str = "tabletop"
    n_objects: int = 2
    terminate_on_success: bool = False


@dataclass
class GenerateConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    task: str = "push"
    policy: str = "scripted"
    noise: float = 0.0
    episodes: int = 200
    out: str = "outputs/data/tabletop-push.zarr"
    workers: int = 2
    seed: int = 0
    image_size: int = 64
    env_id: str | None = None
    max_steps: int | None = None
    overwrite: bool = False


@dataclass
class DemoConfig:
    tasks: list[str] = field(default_factory=lambda: ["push", "pick_place"])
    episodes: int = 2
    noise: float = 0.0
    image_size: int = 64
    upscale: int = 4
    seed: int = 0
    out: str = "outputs/demo"


def load_config(name: str, schema: type[T], overrides: list[str]) -> T:
    """Compose ``conf/<name>.yaml`` with ``overrides`` and return it as a ``schema`` object."""
    with initialize_config_module("cosmos_env.conf", version_base="1.3"):
        raw = compose(config_name=name, overrides=overrides)
    merged = OmegaConf.merge(OmegaConf.structured(schema), raw)  # unknown keys raise here
    return OmegaConf.to_object(merged)
