"""Reports of a world-model-vs-MuJoCo comparison: tables, the fidelity-over-horizon plot,
the side-by-side video and the contact sheet."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cosmos_env.eval import media  # noqa: E402

KEY_HORIZONS = (1, 2, 4, 8, 16, 32)
GAP = 4  # white pixels between panels


def caption(result: dict) -> str:
    """One line saying what was compared: model, data, sampler."""
    cfg, h = result["config"], len(result["per_horizon"]["h"])
    return (
        f"World model `{cfg['checkpoint']}` vs its simulator"
        f"{', ' + result['model']['world'] if 'model' in result else ''}: {cfg['episodes']} "
        f"episodes (seed {cfg['seed']}) of policy {cfg['policy']} (noise {cfg['noise']}), "
        f"open loop for {h} steps from frame {cfg.get('start', 0)} (with the frames before "
        f"it as context); sampler {result['sampler']}, "
        f"{result['sampler_steps']} step(s)."
    )


def _position_keys(keys, suffix: str) -> list[str]:
    """The named-position error keys (``<name><suffix>``) present, end effector first."""
    return [k for k in keys if k.endswith(suffix) and "probe" not in k]


def horizon_table(per_horizon: dict[str, list[float]]) -> str:
    """Markdown table of the scores at the key horizons (1, 2, 4, 8, 16, ... and H)."""
    n = len(per_horizon["h"])
    picks = sorted({h for h in KEY_HORIZONS if h <= n} | {n})
    header = ["h", "WM PSNR", "copy-last PSNR", "tokenizer PSNR", "WM SSIM", "copy-last SSIM"]
    keys = ["psnr", "copy_last_psnr", "tokenizer_psnr", "ssim", "copy_last_ssim"]
    positions = _position_keys(per_horizon, "_err_cm")
    header += ["state err (std)"] + [f"{k.removesuffix('_err_cm')} err cm" for k in positions]
    keys += ["state_std_err", *positions]
    rows = [[h] + [per_horizon[k][h - 1] for k in keys if k in per_horizon] for h in picks]
    return media.markdown_table(header[: len(rows[0])], rows)


def summary_table(summaries: dict[str, dict[str, float]], label: str = "model") -> str:
    """Markdown table with one row per labelled summary (see ``compare.summarise``)."""
    header = [label, "PSNR h1", "PSNR mean h1-16", "PSNR h16", "copy-last PSNR h16"]
    keys = ["psnr_h1", "psnr_mean_h1_16", "psnr_h16", "copy_last_psnr_h16", "ssim_h16"]
    header += ["SSIM h16"]
    first = next(iter(summaries.values()))
    positions = _position_keys(first, "_err_h16_cm")
    header += [f"{k.removesuffix('_err_h16_cm')} err h16 cm" for k in positions]
    keys += positions
    extra = [k for k in ("reward_pearson", "return_pearson", "success_agreement") if k in first]
    header += [k.replace("_", " ") for k in extra]
    keys += extra
    rows = [[name] + [float(s[k]) for k in keys] for name, s in summaries.items()]
    return media.markdown_table(header, rows)


def plot_fidelity(curves: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """PSNR over horizon (world model per label, copy-last, tokenizer ceiling) and state
    errors (cm); baselines come from the first curves."""
    first = next(iter(curves.values()))
    h = first["h"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (label, c) in enumerate(curves.items()):
        left.plot(h, c["psnr"], "o-", color=f"C{i}", markersize=3, label=label)
        if "state_std_err" in c:
            right.plot(h, c["state_std_err"], "o-", color=f"C{i}", markersize=3, label=label)
    left.plot(h, first["copy_last_psnr"], "--", color="gray", label="copy last frame")
    left.plot(h, first["tokenizer_psnr"], "-.", color="black", label="tokenizer (ceiling)")
    if "probe_on_true_state_std_err" in first:
        probe = first["probe_on_true_state_std_err"]
        right.plot(h, probe, "--", color="gray", label="probe on truth")
    left.set(xlabel="horizon (steps)", ylabel="PSNR (dB)", title="frame fidelity")
    right.set(xlabel="horizon (steps)", ylabel="mean |error| / std", title="state error")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # results from before issue 18 lack state errors
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _with_start(pred: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The world model's frames (N, T+1, ...): its start (the decoded first latent), then
    its predictions."""
    return np.concatenate([recon[:, :1], pred], axis=1)


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(frame)
    for color, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, width, cv2.LINE_AA)
    return out


def side_by_side(
    true: np.ndarray, pred: np.ndarray, recon: np.ndarray, upscale: int = 4
) -> np.ndarray:
    """Video frames (N * (T+1), H', W', 3): MuJoCo | world model | |difference| per step,
    episode after episode. ``true`` and ``recon`` (N, T+1, H, W, 3), ``pred`` (N, T, ...)."""
    wm = _with_start(pred, recon)
    diff = np.abs(true.astype(np.int16) - wm.astype(np.int16)).astype(np.uint8)
    gap = np.full((*true.shape[:2], true.shape[2] * upscale, GAP, 3), 255, np.uint8)
    big = [media.upscale(x, upscale) for x in (true, wm, diff)]
    video = np.concatenate([big[0], gap, big[1], gap, big[2]], axis=3)  # (N, T+1, H', W', 3)
    width = big[0].shape[3] + GAP
    for n, episode in enumerate(video):
        for t, frame in enumerate(episode):
            frame[:] = _label(frame, f"MuJoCo ep {n} t {t}")
            frame[:, width:] = _label(frame[:, width:], "world model")
            frame[:, 2 * width :] = _label(frame[:, 2 * width :], "|difference|")
    return video.reshape(-1, *video.shape[2:])


def write_side_by_side(
    path: Path, true: np.ndarray, pred: np.ndarray, recon: np.ndarray, upscale: int = 4
) -> Path:
    return media.write_video(path, side_by_side(true, pred, recon, upscale), fps=5)


def write_comparison_sheet(
    path: Path, true: np.ndarray, pred: np.ndarray, recon: np.ndarray, columns: int = 9
) -> Path:
    """Contact sheet: per episode a MuJoCo row above a world-model row, same time steps."""
    wm = _with_start(pred, recon)
    rows = [media.upscale(x, 2) for pair in zip(true, wm, strict=True) for x in pair]
    return media.write_png(path, media.contact_sheet(rows, min(columns, true.shape[1])))
