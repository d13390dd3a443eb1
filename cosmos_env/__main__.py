"""``python -m cosmos_env <command> [hydra overrides]``.

A user error (a bad value, a missing or corrupt file, an unknown config key) prints one
line and exits 2; a bug keeps its traceback. ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows
the traceback of user errors too.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosmos_env.config import TrainARConfig, TrainDynamicsConfig

COMMANDS = {
    "generate": "roll a policy out in a MuJoCo world into an episode store",
    "synthesize": "roll a policy out in a world model into a store marked synthetic",
    "demo": "the scripted expert in the tabletop world: video, contact sheet, metrics",
    "compare": "world model vs MuJoCo, same first frame and actions (checkpoint=NAME episodes=N)",
    "train-tokenizer": "train a causal video tokenizer (tokenizer=CI8x8 data=PATH)",
    "encode": "cache a tokenizer's latents or tokens in a store (tokenizer=NAME data=PATH)",
    "train-dynamics": "train a world model on cached latents (dynamics=diffusion|ar data=PATH)",
    "refit-state-track": "train a diffusion model's state track anew (world_model=NAME data=PATH)",
    "retrain": "reproduce the shipped push world model from nothing: data, tokenizer, dynamics",
    "make-world-model": "any world or store to a world-model release (world=gym env_id=ID out=DIR)",
    "convert": "bring robot data into a store: convert bridge|onex SRC DST",
    "export": "write a store for other tools: export lerobot STORE DST | minari STORE ID",
    "verify": "check every chunk of a store: verify STORE (exit 1 when something is bad)",
    "migrate": "copy a store without checksums into a new one with them: migrate SRC DST",
    "machine": "what this machine has and what the defaults chose: cores, threads, bf16",
}


def _usage() -> str:
    lines = ["usage: python -m cosmos_env [--debug] <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:10s} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def train_dynamics_config(overrides: list[str]) -> TrainDynamicsConfig | TrainARConfig:
    """The ``train-dynamics`` config: ``TrainARConfig`` composed from ``conf/train_ar.yaml``
    (DI8x8 tokens and the AR model's training defaults) when the overrides select
    ``dynamics=ar``, else ``TrainDynamicsConfig`` from ``conf/train_dynamics.yaml``."""
    from cosmos_env.config import TrainARConfig, TrainDynamicsConfig, load_config

    if "dynamics=ar" in overrides:
        return load_config("train_ar", TrainARConfig, overrides, ("tokenizer",))
    return load_config("train_dynamics", TrainDynamicsConfig, overrides, ("tokenizer",))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, overrides = argv[0], argv[1:]
    if command == "generate":
        from cosmos_env.config import GenerateConfig, load_config
        from cosmos_env.generate import generate

        summary = generate(load_config("generate", GenerateConfig, overrides))
        print(json.dumps(summary, indent=2))
        return 0
    if command == "synthesize":
        from cosmos_env.config import SynthesizeConfig, load_config
        from cosmos_env.generate import generate

        cfg = load_config("synthesize", SynthesizeConfig, overrides, plain_keys=("checkpoint",))
        print(json.dumps(generate(cfg), indent=2))
        return 0
    if command == "demo":
        from cosmos_env.config import DemoConfig, load_config
        from cosmos_env.demo import run_demo

        run_demo(load_config("demo", DemoConfig, overrides))
        return 0
    if command == "compare":
        from cosmos_env.config import CompareConfig, load_config
        from cosmos_env.eval.compare import run_compare

        run_compare(load_config("compare", CompareConfig, overrides))
        return 0
    if command == "train-tokenizer":
        from cosmos_env.config import TrainTokenizerConfig, load_config
        from cosmos_env.tokenizer.train import train_tokenizer

        result = train_tokenizer(load_config("train_tokenizer", TrainTokenizerConfig, overrides))
        print(json.dumps(result, indent=2))
        return 0
    if command == "encode":
        from cosmos_env.config import EncodeConfig, load_config
        from cosmos_env.tokenizer.cache import encode_command

        cfg = load_config("encode", EncodeConfig, overrides, plain_keys=("tokenizer",))
        print(json.dumps(encode_command(cfg), indent=2))
        return 0
    if command == "train-dynamics":
        from cosmos_env.config import TrainARConfig

        cfg = train_dynamics_config(overrides)
        if isinstance(cfg, TrainARConfig):
            from cosmos_env.dynamics.autoregressive.train import train_ar as train
        else:
            from cosmos_env.dynamics.train import train_dynamics as train
        print(json.dumps(train(cfg), indent=2))
        return 0
    if command == "refit-state-track":
        from cosmos_env.config import RefitStateConfig, load_config
        from cosmos_env.dynamics.refit_state import refit_state_track

        cfg = load_config("refit_state", RefitStateConfig, overrides)
        print(json.dumps(refit_state_track(cfg), indent=2))
        return 0
    if command in ("convert", "export"):
        from cosmos_env.data.cli import convert_command, export_command

        (convert_command if command == "convert" else export_command)(overrides)
        return 0
    if command == "verify":
        from cosmos_env.data.cli import verify_command

        return verify_command(overrides)
    if command == "migrate":
        from cosmos_env.data.cli import migrate_command

        return migrate_command(overrides)
    if command == "machine":
        from cosmos_env.machine import machine_info
        from cosmos_env.precision import describe_amp

        print(json.dumps(machine_info() | {"amp_auto": describe_amp("auto")}, indent=2))
        return 0
    if command == "retrain":
        from cosmos_env.config import RetrainConfig, load_config
        from cosmos_env.retrain import retrain

        print(json.dumps(retrain(load_config("retrain", RetrainConfig, overrides)), indent=2))
        return 0
    if command == "make-world-model":
        from cosmos_env.config import MakeWorldModelConfig, load_config
        from cosmos_env.make_world_model import make_world_model

        cfg = load_config("make_world_model", MakeWorldModelConfig, overrides, ("tokenizer",))
        print(json.dumps(make_world_model(cfg), indent=2))
        return 0
    print(f"unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


def is_user_error(error: BaseException) -> bool:
    """Errors that bad input causes (they name the problem), as opposed to bugs."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cosmos_env.checkpoint import CheckpointError
    from cosmos_env.data.layout import StoreError

    user = (ValueError, OSError, StoreError, CheckpointError, HydraException)
    return isinstance(error, (*user, OmegaConfBaseException))


def cli(argv: list[str] | None = None) -> int:
    """``main`` for the command line: user errors as one line on stderr and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    try:
        return main(argv)
    except Exception as error:
        if debug or not is_user_error(error):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
