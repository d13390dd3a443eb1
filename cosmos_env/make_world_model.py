"""``python -m cosmos_env make-world-model world=gym env_id=Reacher-v5 out=DIR``: from a world
(or ``data=STORE`` you already have) to a world-model release in one command.

Stages, each resumable (a killed run picks up where it stopped when re-run with the same
settings): record episodes in the world's simulator (``generate``, one store per noise
level of the policy); pick the tokenizer (the shipped one if its held-out PSNR on this
world's frames reaches ``tokenizer_min_psnr``, else fine-tuned from it); cache its latents;
train the diffusion dynamics with learned outcome heads; where the state track has a
gripper-frame head, train that track again alone (``refit-state-track``); release with a
model card.
Shapes (action and state dims, image size, cameras, action range) all come from the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cosmos_env.config import (
    GenerateConfig,
    MakeWorldModelConfig,
    StateRefitStage,
    load_config,
    override_value,
)
from cosmos_env.data.store import EpisodeStore
from cosmos_env.dynamics.backends import get_backend
from cosmos_env.stages import StageClock
from cosmos_env.tokenizer.cache import encode_store
from cosmos_env.tokenizer.data import load_clips, store_paths
from cosmos_env.tokenizer.release import load_tokenizer, tokenizer_config
from cosmos_env.tokenizer.train import evaluate as tokenizer_scores
from cosmos_env.tokenizer.train_config import TrainTokenizerConfig

MADE_BY = "- Made by `python -m cosmos_env make-world-model"
GENERATE_KEYS = ("task", "env_id", "policy", "image_size", "max_steps", "workers", "camera")
GENERATE_KEYS += ("executor",)


def _generate(cfg: MakeWorldModelConfig, data: Path) -> list[Path]:
    """One store per noise level under ``data`` (complete ones are kept)."""
    per_store = max(1, cfg.episodes // len(cfg.noise))
    paths = []
    for i, noise in enumerate(cfg.noise):
        paths.append(data / f"noise{noise}.zarr")
        _record(cfg, paths[-1], [f"noise={noise}", f"episodes={per_store}", f"seed={cfg.seed + i}"])
    return paths


def _record(cfg: MakeWorldModelConfig, out: Path, overrides: list[str]) -> None:
    """``generate`` one store at ``out`` in ``cfg``'s world (unless complete already), with
    ``overrides`` on top of the command's own settings."""
    from cosmos_env.generate import generate_unless_complete

    given, overrides = overrides, [f"world={cfg.world.name}"]
    overrides.append(f"world.landmarks={override_value(cfg.world.landmarks)}")
    if cfg.world.scene:  # replaced whole: the fixed scene's {} takes no new keys
        overrides += ["~world.scene", f"+world.scene={override_value(cfg.world.scene)}"]
    overrides.append(f"world.n_objects={cfg.world.n_objects}")
    overrides += [f"out={out}"]
    overrides += [f"{k}={v}" for k in GENERATE_KEYS if (v := getattr(cfg, k)) is not None]
    overrides += [f"+env_kwargs.{k}={override_value(v)}" for k, v in cfg.env_kwargs.items()]
    overrides += given  # last, so that they win (the refit's play store: policy=play)
    generate_unless_complete(load_config("generate", GenerateConfig, overrides))


def _tokenizer(cfg: MakeWorldModelConfig, data: Path, out: Path, log: dict) -> str:
    """The tokenizer to use: the shipped one if it reconstructs this world's held-out
    frames at ``tokenizer_min_psnr`` dB or better, else one fine-tuned from it."""
    shipped = load_tokenizer(cfg.tokenizer)
    clips = load_clips(data, "val", 1, 0.1)
    clips = clips[np.linspace(0, len(clips) - 1, min(256, len(clips))).astype(int)]
    with torch.inference_mode():
        before = tokenizer_scores(shipped, clips)["psnr"]
    log["tokenizer"] = {"shipped": cfg.tokenizer, "shipped_psnr": before}
    if before >= cfg.tokenizer_min_psnr:
        log["tokenizer"]["decision"] = f"shipped (>= {cfg.tokenizer_min_psnr} dB)"
        return cfg.tokenizer
    release = out / "release"
    if not (release / "config.json").exists():
        from cosmos_env.tokenizer.train import train_tokenizer

        overrides = [f"tokenizer={shipped.cfg.name}", f"data={data}", f"out={out}"]
        overrides += [f"init={cfg.tokenizer}", f"max_minutes={cfg.tokenizer_minutes}"]
        overrides += ["lr=5e-4", "warmup_steps=50", f"seed={cfg.seed}"]
        train_tokenizer(load_config("train_tokenizer", TrainTokenizerConfig, overrides))
    log["tokenizer"]["decision"] = f"fine-tuned (< {cfg.tokenizer_min_psnr} dB): {release}"
    return str(release)


def _base_tokenizer(cfg: MakeWorldModelConfig, data: Path, log: dict) -> str:
    """A base's own tokenizer (its latents are what the base knows), once every store is
    checked to have frames of the resolution the base was pre-trained on."""
    from cosmos_env.dynamics.diffusion.base import load_base

    base = load_base(cfg.base)
    size = base.cfg.latent_size * load_tokenizer(base.tokenizer["source"]).cfg.spatial_factor
    for path in store_paths(data):
        height, width = EpisodeStore.open(path).features["rgb"].shape[:2]
        if (height, width) != (size, size):
            raise ValueError(
                f"{path} holds {height}x{width} frames, but base {cfg.base} was pre-trained "
                f"on {size}x{size} frames: record or convert the data at {size}x{size} "
                f"(image_size={size}), or pre-train a base at this resolution"
            )
    log["tokenizer"] = {"decision": f"the base's ({cfg.base}, weights {base.checksum})"}
    return base.tokenizer["source"]


def _check_backend(cfg: MakeWorldModelConfig) -> None:
    """Before anything is recorded: the backend exists and reads what the tokenizer makes
    (AR: discrete tokens, diffusion: continuous latents); a base is a diffusion base."""
    backend = get_backend(cfg.backend)  # a clear error for an unknown name
    if cfg.base:
        if backend.name != "diffusion":
            raise ValueError(f"base={cfg.base} is a diffusion base: use backend=diffusion")
        return
    kind = tokenizer_config(cfg.tokenizer).kind  # the config alone: no weights yet
    if (backend.name == "ar") != (kind == "discrete"):
        want = "a discrete one (DI8x8)" if backend.name == "ar" else "a continuous one (CI8x8)"
        raise ValueError(
            f"backend={backend.name} needs {want}, and tokenizer={cfg.tokenizer} is {kind}"
        )


def _dynamics(cfg: MakeWorldModelConfig, data: Path, tokenizer: str, out: Path) -> Path:
    """Train the backend's world model on the stores (unless released already)."""
    release = out / "release"
    if not (release / "config.json").exists():
        backend = get_backend(cfg.backend)
        overrides = [f"data={data}", "stores=*", f"out={out}", f"tokenizer={tokenizer}"]
        overrides += [f"max_minutes={cfg.budget_minutes}", f"seed={cfg.seed}"]
        overrides += ["dynamics.outcome_heads.width=256", *cfg.dynamics_overrides]
        if cfg.base:
            overrides += [f"+post_train.base={cfg.base}"]
            overrides += [f"+post_train.adapter_rank={cfg.adapter_rank}"]
        train_config = load_config(
            backend.train_conf, backend.load("train_config"), overrides, ("tokenizer",)
        )
        backend.load("trainer")(train_config)
    return release


def _refit_state(cfg: MakeWorldModelConfig, data: Path, release: Path, out: Path) -> Path:
    """The state track trained again alone, where the release's track has a gripper-frame
    head: a planner optimising against the jointly trained track (the denoiser's schedule,
    its weight average) found contact states it gets wrong. Return the release to ship."""
    from cosmos_env.dynamics.release import load_world_model

    if cfg.state_refit is None or cfg.base:  # a post-trained release keeps its joint track
        return release
    world = load_world_model(release)
    track = world.dynamics.cfg.state_track
    head = track.frame_head if track is not None else None
    if head is None:
        return release
    refitted = out / "release"
    if not (refitted / "config.json").exists():
        from cosmos_env.dynamics.diffusion.train_config import RefitStateConfig
        from cosmos_env.dynamics.refit_state import refit_state_track

        stage = cfg.state_refit
        overrides = [f"world_model={release}", f"data={data}", "stores=*", f"out={out}"]
        objects = stage.frame_objects or list(head.objects)
        overrides += [f"frame_head.objects={override_value(objects)}"]
        overrides += [f"frame_head.quat={head.quat}", f"frame_head.width={head.width}"]
        overrides += [f"steps={stage.steps}", f"batch_size={stage.batch_size}"]
        overrides += [f"max_minutes={stage.max_minutes}", f"seed={cfg.seed}"]
        if stage.play_episodes:
            overrides += [f"extra_data={_play_store(cfg, out / 'data', world.tokenizer)}"]
        refit_state_track(load_config("refit_state", RefitStateConfig, overrides))
    return refitted


def _play_store(cfg: MakeWorldModelConfig, data: Path, tokenizer) -> Path:
    """The refit's own store of the world's play policy (random-target motions, off the
    experts' distribution, as a planner's actions are), its latents cached."""
    if cfg.data:
        raise ValueError(
            "state_refit.play_episodes records play motions in the world's simulator, and "
            f"data={cfg.data} gives stores instead of a world: set state_refit.play_episodes=0"
        )
    path = data / "play.zarr"
    episodes = cfg.state_refit.play_episodes
    _record(cfg, path, ["policy=play", f"episodes={episodes}", f"seed={cfg.seed + len(cfg.noise)}"])
    encode_store(path, tokenizer)
    return path


def _check_stores(data: Path) -> None:
    """A store or a directory of stores, each with a StateSpec, else a clear error."""
    for path in store_paths(data):
        _ = EpisodeStore.open(path).state_spec


def make_world_model(cfg: MakeWorldModelConfig) -> dict:
    """Run every stage; return (and write to ``out/make_world_model.json``) the minutes of
    each, the tokenizer decision and the release directory."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_backend(cfg)
    clock = StageClock(out / "make_world_model.json", "make-world-model")
    summary, timed = clock.summary, clock.run

    if cfg.data:
        data = Path(cfg.data)
        _check_stores(data)
    else:
        data = out / "data"
        timed("generate", _generate, cfg, data)
    if cfg.base:
        tokenizer = timed("tokenizer", _base_tokenizer, cfg, data, summary)
    else:
        tokenizer = timed("tokenizer", _tokenizer, cfg, data, out / "tokenizer", summary)
    model = load_tokenizer(tokenizer)
    timed("encode", lambda: [encode_store(p, model) for p in store_paths(data)])
    release = timed("train_dynamics", _dynamics, cfg, data, tokenizer, out / "dynamics")
    release = timed("state_refit", _refit_state, cfg, data, release, out / "state_refit")
    summary |= {"data": str(data), "release": str(release)}
    made_by = (
        f"{MADE_BY} {_settings(cfg)}`: {clock.minutes_text()} (summed over the runs it took); "
        f"tokenizer: {_tokenizer_text(summary['tokenizer'])}"
    )
    _write_made_by(release / "card.md", made_by)
    clock.write()
    return summary


def _write_made_by(card: Path, made_by: str) -> None:
    """Put the ``made_by`` line at the end of the card's first bullet list (the release's
    facts), replacing the one an earlier run wrote there."""
    lines = [line for line in card.read_text().splitlines() if not line.startswith(MADE_BY)]
    bullets = [i for i, line in enumerate(lines) if line.startswith("- ")]
    at = bullets[0] if bullets else len(lines)
    while at < len(lines) and lines[at].startswith(("- ", "  ")):
        at += 1  # past the list and its continuation lines
    card.write_text("\n".join([*lines[:at], made_by, *lines[at:]]) + "\n")


def _tokenizer_text(decision: dict) -> str:
    if "shipped" not in decision:
        return decision["decision"]
    return (
        f"{decision['decision']} (the shipped {decision['shipped']} reconstructs this "
        f"world's held-out frames at {decision['shipped_psnr']:.2f} dB)"
    )


def post_train(cfg: MakeWorldModelConfig) -> dict:
    """``post-train base=NAME data=STORE out=DIR``: make-world-model from a base and data."""
    if not cfg.base or not cfg.data:
        raise ValueError("post-train needs base=NAME (a pre-trained base) and data=STORE")
    return make_world_model(cfg)


def _settings(cfg: MakeWorldModelConfig) -> str:
    """The command's arguments as one would type them again (quoted where a shell needs it)."""
    if cfg.data:
        where = f"data={cfg.data}"
    else:
        where = f"env_id={cfg.env_id}" if cfg.world.name == "gym" else f"task={cfg.task}"
        where = (
            f"world={cfg.world.name} {where} policy={cfg.policy} "
            f"'noise={override_value(list(cfg.noise))}' episodes={cfg.episodes}"
        )
        where += "".join(
            f" '+env_kwargs.{k}={override_value(v)}'" for k, v in cfg.env_kwargs.items()
        )
        if cfg.camera is not None:
            where += f" camera={cfg.camera}"
        if cfg.world.name != "gym":  # the scene's object count (the instructed one needs 3)
            where += f" world.n_objects={cfg.world.n_objects}"
    if cfg.base:
        where += f" base={cfg.base} adapter_rank={cfg.adapter_rank}"
    else:
        where += "" if cfg.backend == "diffusion" else f" backend={cfg.backend}"
        where += f" tokenizer={cfg.tokenizer}"
    where += f" budget_minutes={cfg.budget_minutes}"
    if cfg.state_refit is None:
        where += " state_refit=null"
    else:
        where += "".join(
            f" 'state_refit.{k}={override_value(v)}'"
            for k, v in vars(cfg.state_refit).items()
            if v != getattr(StateRefitStage(), k)
        )
    if cfg.dynamics_overrides:
        quoted = ",".join(f'"{o}"' for o in cfg.dynamics_overrides)
        where += f" 'dynamics_overrides=[{quoted}]'"
    return where
