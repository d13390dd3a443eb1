"""Tokenizer rate-distortion and speed on held-out tabletop frames.

    python benchmarks/tokenizer_rd.py [--quick] [--out DIR] [--tokenizers CI8x8 DI8x8]

Held-out frames come from freshly generated episodes (a seed no training store uses). For
each tokenizer: PSNR/SSIM; for discrete ones the bits per pixel (tokens x log2(codebook) /
pixels) and OpenCV JPEG's PSNR at the same rate (JPEG runs on 8x8 mosaics of frames so
headers are amortised; PSNR is interpolated between the qualities that bracket the rate);
encode/decode frames/s at batch 64 and the achieved GFLOP/s beside the machine's fp32
matmul GFLOP/s measured in the same run. Writes tokenizer_rd.json, tokenizer_rd.md,
tokenizer_rd.png (rate-distortion) and tokenizer_samples.png.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cosmos_env.config import GenerateConfig, load_config  # noqa: E402
from cosmos_env.eval.media import markdown_table, write_png  # noqa: E402
from cosmos_env.eval.metrics import psnr, ssim, to_unit  # noqa: E402
from cosmos_env.generate import generate  # noqa: E402
from cosmos_env.machine import machine_info
from cosmos_env.tokenizer.data import load_clips  # noqa: E402
from cosmos_env.tokenizer.release import decode_frames, encode_frames, load_tokenizer  # noqa: E402

HELD_OUT_SEED = 9_999  # never used by datasets/tabletop/prepare.py (seeds 0, 1, 2)


def held_out_frames(directory: Path, episodes: int) -> np.ndarray:
    """uint8 (N, 64, 64, 3) frames of fresh push and pick-place episodes at noise 0.3."""
    for task in ("push", "pick_place"):
        overrides = [f"out={directory / f'{task}.zarr'}", f"task={task}", "noise=0.3"]
        overrides += [f"episodes={episodes}", f"seed={HELD_OUT_SEED}"]
        generate(load_config("generate", GenerateConfig, overrides))
    return load_clips(directory, "train", 1, val_fraction=0.0)[:, 0]


def _unit(frames: np.ndarray) -> torch.Tensor:
    return to_unit(torch.from_numpy(frames))


def frame_scores(recon: np.ndarray, frames: np.ndarray) -> tuple[float, float]:
    a, b = _unit(recon), _unit(frames)
    return psnr(a, b).mean().item(), ssim(a, b).mean().item()


def reconstruct(model, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    out = []
    for i in range(0, len(frames), batch):
        latents = encode_frames(model, torch.from_numpy(frames[i : i + batch]))
        out.append(decode_frames(model, latents).numpy())
    return np.concatenate(out)


def jpeg_curve(frames: np.ndarray, grid: int = 8) -> list[dict]:
    """(quality, bpp, psnr) of JPEG on grid x grid mosaics of frames."""
    n = (len(frames) // grid**2) * grid**2
    h, w = frames.shape[1:3]
    mosaics = frames[:n].reshape(-1, grid, grid, h, w, 3).transpose(0, 1, 3, 2, 4, 5)
    mosaics = mosaics.reshape(-1, grid * h, grid * w, 3)
    curve = []
    for quality in (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95):
        bits, decoded = 0, []
        for mosaic in mosaics:
            ok, buf = cv2.imencode(".jpg", mosaic[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            bits += 8 * len(buf)
            decoded.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        tiles = np.stack(decoded).reshape(-1, grid, h, grid, w, 3).transpose(0, 1, 3, 2, 4, 5)
        tiles = tiles.reshape(-1, h, w, 3)
        p, s = frame_scores(tiles, frames[:n])
        curve.append({"quality": quality, "bpp": bits / (n * h * w), "psnr": p, "ssim": s})
    return curve


def jpeg_psnr_at(curve: list[dict], bpp: float) -> float | None:
    """JPEG PSNR linearly interpolated at ``bpp``; None if JPEG cannot reach that rate."""
    rates = np.array([c["bpp"] for c in curve])
    if bpp < rates.min() or bpp > rates.max():
        return None
    order = np.argsort(rates)
    return float(np.interp(bpp, rates[order], np.array([c["psnr"] for c in curve])[order]))


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def speed(model, frames: np.ndarray, batch: int = 64, repeats: int = 10) -> dict:
    """Encode and decode frames/s at ``batch`` and the achieved GFLOP/s of each."""
    video = _unit(frames[:batch]).unsqueeze(2)
    result = {}
    with torch.inference_mode():
        latent = model.encode(video)
        for name, fn, arg in (("encode", model.encode, video), ("decode", model.decode, latent)):
            with FlopCounterMode(display=False) as counter:
                fn(arg)
            for _ in range(2):
                fn(arg)
            start = time.perf_counter()
            for _ in range(repeats):
                fn(arg)
            seconds = (time.perf_counter() - start) / repeats
            result[f"{name}_fps"] = batch / seconds
            result[f"{name}_gflops"] = counter.get_total_flops() / seconds / 1e9
            result[f"{name}_mflop_per_frame"] = counter.get_total_flops() / batch / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer held-out episodes")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--tokenizers", nargs="+", default=["CI8x8", "DI8x8"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        frames = held_out_frames(Path(tmp), episodes=8 if args.quick else 40)
    results: dict = {"machine": machine_info(), "held_out_frames": len(frames)}
    results["matmul_gflops"] = matmul_gflops()
    curve = jpeg_curve(frames)
    results["jpeg_curve"] = curve
    samples = [frames[:: max(1, len(frames) // 6)][:6]]
    rows, names = [], []
    for source in args.tokenizers:
        model = load_tokenizer(source)
        cfg = model.cfg
        name = cfg.name
        names.append(name)
        recon = reconstruct(model, frames)
        samples.append(recon[:: max(1, len(frames) // 6)][:6])
        p, s = frame_scores(recon, frames)
        entry = {"psnr": p, "ssim": s, "checksum": model.checksum, **speed(model, frames)}
        if cfg.kind == "discrete":
            bpp = math.log2(cfg.codebook_size) / cfg.spatial_factor**2
            entry |= {"bpp": bpp, "codebook_size": cfg.codebook_size}
            entry["jpeg_psnr_at_bpp"] = jpeg_psnr_at(curve, bpp)
        results[name] = entry
        jpeg = entry.get("jpeg_psnr_at_bpp")
        rows.append(
            [
                name,
                p,
                s,
                entry.get("bpp", "-"),
                "-" if jpeg is None else jpeg,
                entry["encode_fps"],
                entry["decode_fps"],
                entry["encode_gflops"],
                entry["decode_gflops"],
            ]
        )
    table = markdown_table(
        [
            "tokenizer",
            "PSNR dB",
            "SSIM",
            "bits/pixel",
            "JPEG PSNR at same bpp",
            "encode fps (b64)",
            "decode fps (b64)",
            "encode GFLOP/s",
            "decode GFLOP/s",
        ],
        rows,
    )
    table += f"\n\nMachine fp32 matmul (2048^2): {results['matmul_gflops']:.1f} GFLOP/s. "
    table += f"{len(frames)} held-out 64x64 frames. JPEG: OpenCV on 8x8 mosaics.\n"
    (args.out / "tokenizer_rd.json").write_text(json.dumps(results, indent=2))
    (args.out / "tokenizer_rd.md").write_text(table)
    _plot(curve, results, names, args.out / "tokenizer_rd.png")
    sheet = np.concatenate([np.concatenate(list(row), axis=1) for row in samples], axis=0)
    write_png(args.out / "tokenizer_samples.png", sheet.repeat(3, 0).repeat(3, 1))
    print(table)


def _plot(curve: list[dict], results: dict, names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        [c["bpp"] for c in curve], [c["psnr"] for c in curve], "o-", label="OpenCV JPEG (mosaics)"
    )
    for i, name in enumerate(names):
        entry = results[name]
        if "bpp" in entry:
            ax.plot(entry["bpp"], entry["psnr"], "*", markersize=14, color=f"C{i + 1}", label=name)
        else:
            ax.axhline(
                entry["psnr"], linestyle="--", color=f"C{i + 1}", label=f"{name} (continuous)"
            )
    ax.set(
        xscale="log",
        xlabel="bits per pixel",
        ylabel="PSNR (dB)",
        title="Tokenizer rate-distortion, held-out 64x64 frames",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
