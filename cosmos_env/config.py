"""Hydra configs as typed dataclasses: compose YAML from ``cosmos_env/conf`` with command-line
overrides, then validate against the dataclass so that unknown keys and wrong types fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from cosmos_env.precision import resolve_amp

T = TypeVar("T")


@dataclass
class WorldConfig:
    name: str = "tabletop"
    n_objects: int = 2
    terminate_on_success: bool = False
    # gym worlds: bodies whose positions join the state ("auto": the moving ones; []: none)
    landmarks: Any = field(default_factory=list)
    # tabletop: per-episode scene ranges, checked by cosmos_env.sim.scene.SceneRanges
    # ({}: the fixed scene); see conf/world/tabletop_random.yaml
    scene: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerateConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    task: str = "push"
    policy: str = "scripted"  # scripted | random | play | package.module:factory (factory(env))
    noise: float = 0.0
    episodes: int = 200
    out: str = "outputs/data/tabletop-push.zarr"
    executor: str = "local"  # local (processes here) | ray (Ray actors; RAY_ADDRESS: a cluster)
    workers: int = 0  # processes or Ray actors; 0: one per usable core (at most one per episode)
    seed: int = 0
    image_size: int = 64
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # to gym.make: +env_kwargs.K=V
    camera: str | None = None  # gym envs: a camera name (or id); None: the env's default
    max_steps: int | None = None
    overwrite: bool = False


@dataclass
class SynthesizeConfig(GenerateConfig):
    """``generate`` in a world model instead of MuJoCo: the policy acts on the predicted
    frames (the scripted expert on the world model's state), and the store is marked
    synthetic."""

    backend: str = "diffusion"  # diffusion | ar
    checkpoint: str | None = None  # default: the shipped model of the backend and task
    sampler_steps: int | None = None
    reset_source: str = "store"  # store (held-out first frames) | mujoco (a live reset)
    guard: bool = True  # pixelate faces in the synthetic frames (guardrails.faces)
    workers: int = 1  # one process: a world-model env already uses every core
    out: str = "outputs/data/synthetic-push.zarr"


@dataclass
class DemoConfig:
    tasks: list[str] = field(default_factory=lambda: ["push", "pick_place"])
    episodes: int = 2
    noise: float = 0.0
    image_size: int = 64
    upscale: int = 4
    seed: int = 0
    out: str = "outputs/demo"
    checkpoint: str = "diffusion-push"  # the world model compared with MuJoCo
    compare_episodes: int = 4
    compare_horizon: int = 16
    compare_noise: float = 0.3


@dataclass
class EncodeConfig:
    tokenizer: str = "CI8x8"  # shipped name or checkpoint directory
    data: str = "datasets/tabletop/data"
    batch_size: int = 256
    overwrite: bool = False


@dataclass
class RetrainConfig:
    out: str = "outputs/retrain"
    tokenizer: str = "CI8x8"  # tokenizer config group
    push_episodes: int = 400
    push_noise: list[float] = field(default_factory=lambda: [0.0, 0.3, 0.6, 1.0])
    pick_place_episodes: int = 100  # tokenizer data only
    pick_place_noise: list[float] = field(default_factory=lambda: [0.0, 0.3, 0.6])
    tokenizer_minutes: float = 20.0
    dynamics_minutes: float = 30.0
    workers: int = 0  # generate's processes; 0: one per usable core
    executor: str = "local"  # where generate's episodes run: local | ray
    seed: int = 0


@dataclass
class StateRefitStage:
    """make-world-model's last stage: the state track trained again alone
    (``refit-state-track``), same architecture, with its own learning-rate schedule and no
    weight average; run where the track has a gripper-frame head (contact-rich worlds)."""

    steps: int = 6000
    batch_size: int = 512
    max_minutes: float = 15.0
    # The objects whose planar motion the refit head predicts; None: the release's own.
    # The head assumes a footprint with 4-fold symmetry: an object that rolls (a cylinder
    # on its side) is better left to the state MLP.
    frame_objects: list[str] | None = None
    # Episodes of the world's play policy recorded for the refit alone: a planner's actions
    # are off the experts' distribution, and the track must follow them all the same.
    play_episodes: int = 0


@dataclass
class MakeWorldModelConfig:
    """``make-world-model``: a world (or ``data``, stores you have) to a world-model release."""

    world: WorldConfig = field(default_factory=WorldConfig)
    data: str | None = None  # a store or a directory of stores: skip recording
    out: str = "outputs/world-models/tabletop-push"
    task: str | None = None  # tabletop task
    env_id: str | None = None  # Gymnasium MuJoCo env id when world=gym
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # +env_kwargs.K=V
    camera: str | None = None
    policy: str = "scripted"  # scripted | random | play | package.module:factory
    noise: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])  # one store each
    episodes: int = 300  # in all, split over the noise levels
    image_size: int = 64
    max_steps: int | None = None
    workers: int = 0
    executor: str = "local"  # where generate's episodes run: local | ray
    backend: str = "diffusion"  # the world model trained: diffusion | ar (discrete tokens)
    tokenizer: str = "CI8x8"  # the shipped tokenizer to use or to fine-tune from
    tokenizer_min_psnr: float = 30.0  # dB on this world's held-out frames: below it, fine-tune
    tokenizer_minutes: float = 10.0
    budget_minutes: float = 30.0  # dynamics training wall-clock budget
    dynamics_overrides: list[str] = field(default_factory=list)  # e.g. ["dynamics.net.width=128"]
    seed: int = 0
    # Post-train this pre-trained base (its tokenizer and network) instead of training from
    # scratch; adapter_rank 0 fine-tunes all its weights, > 0 trains low-rank adapters.
    base: str | None = None
    adapter_rank: int = 16
    state_refit: StateRefitStage | None = field(default_factory=StateRefitStage)  # null: skip


def load_config(
    name: str,
    schema: type[T],
    overrides: list[str],
    plain_keys: tuple[str, ...] = (),
    config_module: str = "cosmos_env.conf",
) -> T:
    """Compose ``<config_module>/<name>.yaml`` with ``overrides`` and return it as a
    ``schema`` object.

    ``plain_keys`` are set as plain values after composition: a key such as ``tokenizer``
    that is also a config group name would otherwise be read as a group choice.
    """
    plain = [o for o in overrides if o.split("=", 1)[0] in plain_keys]
    with initialize_config_module(config_module, version_base="1.3"):
        raw = compose(config_name=name, overrides=[o for o in overrides if o not in plain])
    for override in plain:
        key, value = override.split("=", 1)
        OmegaConf.update(raw, key, value, force_add=False)
    merged = OmegaConf.merge(OmegaConf.structured(schema), raw)  # unknown keys raise here
    cfg = OmegaConf.to_object(merged)
    if hasattr(cfg, "amp"):
        resolve_amp(cfg.amp)  # "auto" | true | false, checked before any work starts
    return cfg


def override_value(value: Any) -> str:
    """``value`` (a string, number, bool, None, or a list or dict of them) in Hydra's
    override grammar, so that one command passes a config value on to another as it was
    given (``+env_kwargs.K=V``, ``world.scene={...}``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


@dataclass
class CompareConfig:
    """``compare``: a release against its world's simulator (the world comes from it)."""

    policy: str = "scripted"  # scripted (the world's expert) | random
    noise: float = 0.3
    episodes: int = 8
    checkpoint: str | None = "diffusion-push"  # shipped world model name or release directory
    horizon: int = 16
    start: int = 0  # first compared frame; > 0 gives the world model real context frames
    sampler: str | None = None  # None: the checkpoint's default
    sampler_steps: int | None = None
    amp: Any = "auto"  # "auto" | true | false: bf16 autocast ("auto": where the CPU has it)
    guidance: float = 1.0  # classifier-free guidance (instruction models: on the instruction)
    instruction: str | None = None  # instruction models: every episode's (None: each reset's)
    seed: int = 9999  # held out: the training stores use small seeds (0-6)
    video_episodes: int = 4
    upscale: int = 4
    out: str = "outputs/compare"
