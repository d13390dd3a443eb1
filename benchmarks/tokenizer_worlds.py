"""Tokenizers across worlds: ``benchmarks/tokenizer_worlds.py [--quick] --out DIR
[--tokenizers NAME ...]`` writes ``DIR/tokenizer_worlds.json`` and ``.md``.

Held-out frames of every world of the pre-training corpus (``conf/corpus.yaml``: each
source's world and policy, freshly recorded with a seed no store uses) and of the held-out
targets (the held-out tabletop scene, the Gymnasium env the corpus leaves out), and of
every shipped world model's own world as its release renders it (``shipped <world>``: the
fixed tabletop scene, the framed Gymnasium views; the scripted expert at noise 0.5, frames
of held-out episodes), where ``own`` names the release's tokenizer. For each
tokenizer (by default the shipped per-world ones, CI8x8 for the tabletop and CI8x8-gym for
Gymnasium envs, and any general one given): PSNR and SSIM per world, and OpenCV JPEG's
PSNR at the same bits per pixel (a continuous tokenizer's latents stored as float16; a
discrete one's tokens at log2 of its codebook). Keys: ``<world>.<tokenizer>.<metric>``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from tokenizer_rd import frame_scores, jpeg_curve, jpeg_psnr_at, reconstruct

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.corpus import CorpusConfig, store_configs
from cosmos_env.data.store import EpisodeStore
from cosmos_env.dynamics.release import load_world_model, shipped_catalogue
from cosmos_env.eval.compare import world_of
from cosmos_env.eval.media import markdown_table
from cosmos_env.eval.simulate import simulate
from cosmos_env.generate import generate
from cosmos_env.machine import machine_info, machine_line, set_torch_threads
from cosmos_env.tokenizer.release import load_tokenizer

HELD_OUT_SEED = 9_999  # no corpus or training store uses it
HELD_OUT_TARGETS = {
    "held-out tabletop": ["world=tabletop_heldout", "task=push", "noise=0.3"],
    "held-out Walker2d-v5": [
        "world=gym",
        "env_id=Walker2d-v5",
        "policy=play",
        "max_steps=64",
        "+env_kwargs.terminate_when_unhealthy=false",
    ],
}


def world_recordings(episodes: int) -> dict[str, GenerateConfig]:
    """One generate config per world: the corpus's sources (their first noise level) and
    the held-out targets, ``episodes`` each, seeded apart from every training store."""
    cfg = load_config("corpus", CorpusConfig, [f"seed={HELD_OUT_SEED}"])
    worlds: dict[str, GenerateConfig] = {}
    for name, gen in store_configs(cfg).items():
        source = name.split(".noise")[0]
        if source not in worlds:
            gen.episodes = episodes
            worlds[source] = gen
    for name, overrides in HELD_OUT_TARGETS.items():
        args = [*overrides, f"episodes={episodes}", f"seed={HELD_OUT_SEED}"]
        worlds[name] = load_config("generate", GenerateConfig, args)
    return worlds


SHIPPED_EPISODES, SHIPPED_HORIZON = 8, 32  # 264 frames per shipped world


def shipped_world_frames(
    limit: int, episodes: int = SHIPPED_EPISODES, horizon: int = SHIPPED_HORIZON
) -> dict[str, tuple[np.ndarray, str]]:
    """``shipped <world>`` -> (uint8 frames (N, H, W, 3) of held-out expert episodes in the
    world a shipped diffusion release was trained on, that release's tokenizer name)."""
    worlds = {}
    for world_name, backends in shipped_catalogue().items():
        if "diffusion" not in backends:
            continue
        wm = load_world_model(backends["diffusion"])
        truth = simulate(
            world_of(wm),
            "scripted",
            0.5,
            episodes,
            horizon,
            HELD_OUT_SEED,
            wm.image_size,
        )
        rgb = truth.frames.reshape(-1, *truth.frames.shape[2:])
        rgb = rgb[np.linspace(0, len(rgb) - 1, min(limit, len(rgb))).astype(int)]
        worlds[f"shipped {world_name}"] = (rgb, Path(wm.tokenizer.source).name)
    return worlds


def frames_of(gen: GenerateConfig, directory: Path, limit: int) -> np.ndarray:
    """uint8 (N, H, W, 3): up to ``limit`` frames, evenly spread over the recording."""
    gen.out, gen.workers = str(directory / "store.zarr"), 0
    generate(gen)
    store = EpisodeStore.open(gen.out)
    rgb = np.concatenate([store.load_episode(i, ["rgb"])["rgb"] for i in range(store.n_episodes)])
    return rgb[np.linspace(0, len(rgb) - 1, min(limit, len(rgb))).astype(int)]


def bits_per_pixel(model, image_size: int) -> float:
    """Bits of one frame's code over its pixels: float16 latents, or one FSQ token of
    log2(codebook) bits per latent position."""
    cfg = model.cfg
    positions = (image_size // cfg.spatial_factor) ** 2
    if cfg.kind == "discrete":
        return positions * float(np.log2(cfg.codebook_size)) / image_size**2
    return positions * cfg.code_channels * 16.0 / image_size**2


def score_world(frames: np.ndarray, tokenizers: dict) -> dict:
    curve = jpeg_curve(frames, grid=max(1, min(4, int(np.sqrt(len(frames))))))  # short episodes
    row = {}
    for name, model in tokenizers.items():
        with torch.inference_mode():
            p, s = frame_scores(reconstruct(model, frames), frames)
        bpp = bits_per_pixel(model, frames.shape[1])
        row[name] = {"psnr": p, "ssim": s, "bpp": bpp, "jpeg_psnr": jpeg_psnr_at(curve, bpp)}
    return row


def table(results: dict) -> str:
    names = [k for k in next(iter(results["worlds"].values())) if k != "frames"]
    names = [n for n in names if n != "own"]
    header = ["world", "frames", *(f"{n} PSNR" for n in names), "JPEG at same bpp", "own"]
    rows = []
    for world, row in results["worlds"].items():
        jpeg = row[names[0]]["jpeg_psnr"]
        cells = [row[n]["psnr"] for n in names]
        rows.append([world, row["frames"], *cells, jpeg or "-", row.get("own", "-")])
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 episodes, 64 frames per world")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--tokenizers", nargs="+", default=["CI8x8", "CI8x8-gym"])
    args = parser.parse_args()
    set_torch_threads()
    episodes, limit = (2, 64) if args.quick else (6, 256)
    tokenizers = {name: load_tokenizer(name) for name in args.tokenizers}
    results: dict = {"quick": args.quick, "machine": machine_info(), "worlds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (world, gen) in enumerate(world_recordings(episodes).items()):
            print(f"[tokenizer_worlds] {world}", flush=True)
            frames = frames_of(gen, Path(tmp) / str(i), limit)
            results["worlds"][world] = {"frames": len(frames), **score_world(frames, tokenizers)}
    owns = dict(tokenizers)  # the shipped releases' own tokenizers, each loaded once
    for world, (frames, own) in shipped_world_frames(limit).items():
        print(f"[tokenizer_worlds] {world}", flush=True)
        owns.setdefault(own, load_tokenizer(own))
        scored = {**tokenizers, own: owns[own]}
        results["worlds"][world] = {"frames": len(frames), "own": own}
        results["worlds"][world] |= score_world(frames, scored)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokenizer_worlds.json").write_text(json.dumps(results, indent=2) + "\n")
    text = (
        "Tokenizer PSNR (dB) on held-out frames of every corpus world, held-out target and "
        "shipped world model's world (own: that release's tokenizer); JPEG at the first "
        "tokenizer's bits per pixel (float16 latents).\n\n"
        f"{table(results)}\n\n{machine_line(results['machine'])}\n"
    )
    (args.out / "tokenizer_worlds.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
