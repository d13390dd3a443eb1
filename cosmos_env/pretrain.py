"""``python -m cosmos_env pretrain out=DIR`` (``make pretrain``): a world foundation model from
nothing, in stages that each resume where a killed run stopped:

1. ``corpus``: the diverse corpus of ``conf/corpus.yaml`` (``cosmos_env/corpus.py``);
2. ``tokenizer``: the general tokenizer, fine-tuned on every world of it from ``tokenizer``;
3. ``encode``: its latents cached in every store;
4. ``base``: the action-free base (``pretrain-base``) on those latents.

``out/pretrain.json`` records each stage's minutes (summed over runs) and the releases;
the base's card gets the command and the minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cosmos_env.config import load_config
from cosmos_env.stages import StageClock


@dataclass
class PretrainConfig:
    out: str = "outputs/pretrain"
    corpus_overrides: list[str] = field(default_factory=list)  # e.g. ["scale=0.1"]
    tokenizer: str = "CI8x8"  # the shipped tokenizer the general one starts from
    tokenizer_minutes: float = 30.0
    tokenizer_overrides: list[str] = field(default_factory=list)
    base_minutes: float = 120.0
    base_overrides: list[str] = field(default_factory=list)  # e.g. ["dynamics.net.width=256"]
    seed: int = 0


def _corpus(cfg: PretrainConfig, out: Path) -> dict:
    from cosmos_env.corpus import CorpusConfig, build_corpus

    overrides = [f"out={out / 'corpus'}", f"seed={cfg.seed}", *cfg.corpus_overrides]
    return build_corpus(load_config("corpus", CorpusConfig, overrides))


def _tokenizer(cfg: PretrainConfig, out: Path) -> Path:
    """The general tokenizer's release (trained once; a finished one is kept)."""
    release = out / "tokenizer" / "release"
    if not (release / "config.json").exists():
        from cosmos_env.tokenizer.release import load_tokenizer
        from cosmos_env.tokenizer.train import train_tokenizer
        from cosmos_env.tokenizer.train_config import TrainTokenizerConfig

        name = load_tokenizer(cfg.tokenizer).cfg.name
        overrides = [f"tokenizer={name}", f"init={cfg.tokenizer}", f"data={out / 'corpus'}"]
        overrides += [f"out={out / 'tokenizer'}", f"max_minutes={cfg.tokenizer_minutes}"]
        overrides += ["lr=5e-4", "warmup_steps=50", f"seed={cfg.seed}", *cfg.tokenizer_overrides]
        train_tokenizer(load_config("train_tokenizer", TrainTokenizerConfig, overrides))
    return release


def _encode(out: Path, tokenizer: Path) -> None:
    from cosmos_env.tokenizer.cache import encode_store
    from cosmos_env.tokenizer.data import store_paths
    from cosmos_env.tokenizer.release import load_tokenizer

    model = load_tokenizer(tokenizer)
    for path in store_paths(out / "corpus"):
        encode_store(path, model)  # a complete cache is kept


def _base(cfg: PretrainConfig, out: Path, tokenizer: Path) -> Path:
    release = out / "base" / "release"
    if not (release / "config.json").exists():
        from cosmos_env.dynamics.diffusion.pretrain import pretrain_base
        from cosmos_env.dynamics.diffusion.train_config import TrainDynamicsConfig

        overrides = [f"data={out / 'corpus'}", f"tokenizer={tokenizer}", f"out={out / 'base'}"]
        overrides += [f"max_minutes={cfg.base_minutes}", f"seed={cfg.seed}", *cfg.base_overrides]
        pretrain_base(load_config("pretrain_base", TrainDynamicsConfig, overrides, ("tokenizer",)))
    return release


def pretrain(cfg: PretrainConfig) -> dict:
    """Run every stage (finished ones are kept); return the record ``out/pretrain.json``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock(out / "pretrain.json", "pretrain")
    corpus = clock.run("corpus", _corpus, cfg, out)
    tokenizer = clock.run("tokenizer", _tokenizer, cfg, out)
    clock.run("encode", _encode, out, tokenizer)
    base = clock.run("base", _base, cfg, out, tokenizer)
    clock.summary |= {
        "corpus": {k: corpus[k] for k in ("episodes", "frames", "worlds", "held_out")},
        "tokenizer": str(tokenizer),
        "base": str(base),
    }
    card = base / "card.md"
    made_by = "- Made by `python -m cosmos_env pretrain"
    kept = [line for line in card.read_text().splitlines() if not line.startswith(made_by)]
    line = f"{made_by} out={cfg.out}`: {clock.minutes_text()} (summed over the runs it took)"
    card.write_text("\n".join([*kept, line]) + "\n")
    clock.write()
    return clock.summary
