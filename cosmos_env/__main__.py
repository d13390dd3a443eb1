"""``python -m cosmos_env <command> [hydra overrides]``.

A user error (a bad value, a missing or corrupt file, an unknown config key) prints one
line and exits 2; a bug keeps its traceback. ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows
the traceback of user errors too.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosmos_env.dynamics.autoregressive.train_config import TrainARConfig
    from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig


@dataclass(frozen=True)
class Command:
    """One command line verb: its help line and ``run(overrides) -> exit code``; a
    ``data_parallel`` one may run under ``torchrun`` (`cosmos_env.distributed`)."""

    help: str
    run: Callable[[list[str]], int]
    data_parallel: bool = False


def _target(path: str) -> Callable:
    """``module:function``, imported when the command runs (``--help`` stays instant)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _hydra(conf: str, schema: str, target: str, plain=(), show: bool = True) -> Callable:
    """A command that composes ``conf/<conf>.yaml`` into ``schema`` (a class of
    ``cosmos_env.config``, or ``module:Class`` for one that lives beside its command) with the
    overrides, runs ``target(cfg)`` and prints its result as JSON (unless ``show`` is off)."""

    def run(overrides: list[str]) -> int:
        from cosmos_env import config

        classes = _target(schema) if ":" in schema else getattr(config, schema)
        cfg = config.load_config(conf, classes, overrides, plain)
        result = _target(target)(cfg)
        if show:
            print(json.dumps(result, indent=2))
        return 0

    return run


def _raw(target: str) -> Callable:
    """A command whose ``target(overrides)`` parses its own arguments; an int it returns is
    the exit code (anything else, such as a printed summary, means success)."""

    def run(overrides: list[str]) -> int:
        code = _target(target)(overrides)
        return code if isinstance(code, int) else 0

    return run


def _train_dynamics(overrides: list[str]) -> int:
    """``train-dynamics``: the config group ``dynamics=`` picks the backend's trainer."""
    from cosmos_env.dynamics.backends import get_backend

    cfg = train_dynamics_config(overrides)
    trainer = get_backend(_chosen_backend(overrides)).load("trainer")
    print(json.dumps(trainer(cfg), indent=2))
    return 0


def _chosen_backend(overrides: list[str]) -> str:
    """The ``dynamics=NAME`` group choice among the overrides; "diffusion" without one."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("dynamics=")]
    return chosen[-1] if chosen else "diffusion"


def _machine(overrides: list[str]) -> int:
    from cosmos_env.machine import machine_info
    from cosmos_env.precision import describe_amp

    print(json.dumps(machine_info() | {"amp_auto": describe_amp("auto")}, indent=2))
    return 0


TOKENIZER = ("tokenizer",)  # a plain value here, not the config group of the same name
COMMANDS: dict[str, Command] = {
    "generate": Command(
        "roll a policy out in a world's simulator into an episode store",
        _hydra("generate", "GenerateConfig", "cosmos_env.generate:generate"),
    ),
    "synthesize": Command(
        "roll a policy out in a world model into a store marked synthetic",
        _hydra("synthesize", "SynthesizeConfig", "cosmos_env.generate:generate", ("checkpoint",)),
    ),
    "demo": Command(
        "the scripted expert in the tabletop world: video, contact sheet, metrics",
        _hydra("demo", "DemoConfig", "cosmos_env.demo:run_demo", show=False),
    ),
    "compare": Command(
        "a world model vs its simulator, same first frame and actions (checkpoint=DIR)",
        _hydra("compare", "CompareConfig", "cosmos_env.eval.compare:run_compare", show=False),
    ),
    "imagine": Command(
        "an instruction model imagines instruction=TEXT beside the simulator's expert",
        _hydra("imagine", "CompareConfig", "cosmos_env.eval.compare:run_imagine", show=False),
    ),
    "train-tokenizer": Command(
        "train a causal video tokenizer (tokenizer=CI8x8 data=PATH [init=NAME])",
        _hydra(
            "train_tokenizer",
            "cosmos_env.tokenizer.train_config:TrainTokenizerConfig",
            "cosmos_env.tokenizer.train:train_tokenizer",
        ),
        data_parallel=True,
    ),
    "encode": Command(
        "cache a tokenizer's latents or tokens in a store (tokenizer=NAME data=PATH)",
        _hydra("encode", "EncodeConfig", "cosmos_env.tokenizer.cache:encode_command", TOKENIZER),
    ),
    "train-dynamics": Command(
        "train a world model on cached latents (dynamics=diffusion|ar data=PATH)",
        _train_dynamics,
        data_parallel=True,
    ),
    "refit-state-track": Command(
        "train a diffusion model's state track anew (world_model=NAME data=PATH)",
        _hydra(
            "refit_state",
            "cosmos_env.dynamics.diffusion.train_config:RefitStateConfig",
            "cosmos_env.dynamics.refit_state:refit_state_track",
        ),
    ),
    "make-world-model": Command(
        "any world or store to a world-model release (world=gym env_id=ID out=DIR | data=STORE)",
        _hydra(
            "make_world_model",
            "MakeWorldModelConfig",
            "cosmos_env.make_world_model:make_world_model",
            TOKENIZER,
        ),
    ),
    "corpus": Command(
        "record the diverse pre-training corpus of conf/corpus.yaml (out=DIR [scale=S])",
        _hydra("corpus", "cosmos_env.corpus:CorpusConfig", "cosmos_env.corpus:build_corpus"),
    ),
    "pretrain": Command(
        "a world foundation model from nothing: corpus, general tokenizer, base (out=DIR)",
        _hydra("pretrain", "cosmos_env.pretrain:PretrainConfig", "cosmos_env.pretrain:pretrain"),
    ),
    "pretrain-base": Command(
        "pre-train an action-free world foundation model on a corpus (data=DIR tokenizer=NAME)",
        _hydra(
            "pretrain_base",
            "cosmos_env.dynamics.diffusion.train_config:TrainDynamicsConfig",
            "cosmos_env.dynamics.diffusion.pretrain:pretrain_base",
            TOKENIZER,
        ),
        data_parallel=True,
    ),
    "post-train": Command(
        "post-train a base for one world's episodes (base=NAME data=STORE out=DIR)",
        _hydra(
            "post_train",
            "MakeWorldModelConfig",
            "cosmos_env.make_world_model:post_train",
            TOKENIZER,
        ),
    ),
    "quantize": Command(
        "re-release a world model or base with float16 or int8 weights (checkpoint=NAME out=DIR)",
        _hydra(
            "quantize",
            "cosmos_env.dynamics.quantize:QuantizeConfig",
            "cosmos_env.dynamics.quantize:quantize_release",
            ("checkpoint",),
        ),
    ),
    "retrain": Command(
        "reproduce the shipped push world model from nothing: data, tokenizer, dynamics",
        _hydra("retrain", "RetrainConfig", "cosmos_env.retrain:retrain"),
    ),
    "convert": Command(
        "bring robot data into a store: convert bridge|onex SRC DST",
        _raw("cosmos_env.data.cli:convert_command"),
    ),
    "curate": Command(
        "raw videos into clean clips: curate SRC DST [executor=local|ray] (split, filter, dedup)",
        _raw("cosmos_env.curate.cli:curate_command"),
    ),
    "export": Command(
        "write a store for other tools: export lerobot STORE DST | minari STORE ID",
        _raw("cosmos_env.data.cli:export_command"),
    ),
    "verify": Command(
        "check every chunk of a store: verify STORE (exit 1 when something is bad)",
        _raw("cosmos_env.data.cli:verify_command"),
    ),
    "migrate": Command(
        "copy a store without checksums into a new one with them: migrate SRC DST",
        _raw("cosmos_env.data.cli:migrate_command"),
    ),
    "play": Command(
        "drive a world model live from a browser page (world=NAME | checkpoint=DIR [port=N])",
        _hydra(
            "play",
            "cosmos_env.play.server:PlayConfig",
            "cosmos_env.play.server:play",
            ("checkpoint", "world"),
            show=False,
        ),
    ),
    "machine": Command(
        "what this machine has and what the defaults chose: cores, threads, bf16", _machine
    ),
}


def _usage() -> str:
    lines = ["usage: python -m cosmos_env [--debug] <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:18s} {command.help}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def train_dynamics_config(overrides: list[str]) -> TrainDynamicsConfig | TrainARConfig:
    """The ``train-dynamics`` config: ``TrainARConfig`` composed from ``conf/train_ar.yaml``
    (DI8x8 tokens and the AR model's training defaults) when the overrides select
    ``dynamics=ar``, else ``TrainDynamicsConfig`` from ``conf/train_dynamics.yaml``."""
    from cosmos_env.config import load_config
    from cosmos_env.dynamics.backends import get_backend

    backend = get_backend(_chosen_backend(overrides))
    return load_config(backend.train_conf, backend.load("train_config"), overrides, TOKENIZER)


def main(argv: list[str] | None = None) -> int:
    """Run one command (dispatched from ``COMMANDS``); user errors raise (``cli`` prints
    them in one line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, overrides = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from cosmos_env.distributed import launched_size

    if launched_size() > 1 and not COMMANDS[command].data_parallel:
        parallel = ", ".join(name for name, c in COMMANDS.items() if c.data_parallel)
        raise ValueError(
            f"{command!r} runs in one process, but torchrun started {launched_size()}: "
            f"run it with python -m cosmos_env, or torchrun a training command ({parallel})"
        )
    return COMMANDS[command].run(overrides)


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
