"""Quality filters of a clip: exposure, motion, sharpness.

Each measure is a plain function of uint8 frames (T, H, W, 3); `reject_reason` applies the
thresholds in a fixed order (exposure, then motion, then blur), so a clip is dropped for the
first thing wrong with it: a black clip is "too dark", not also "static" and "blurred".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SAMPLE_FRAMES = 8  # sharpness and exposure look at this many frames, evenly spread


@dataclass
class FilterConfig:
    """Thresholds; a clip failing one is dropped with that reason."""

    dark_below: float = 20.0  # mean luma (0-255) of a near-black frame
    bright_above: float = 235.0  # mean luma of an over-exposed frame
    bad_exposure_fraction: float = 0.5  # of the sampled frames, to drop the clip
    min_motion: float = 0.002  # mean fraction of pixels that change per frame
    change_level: float = 12.0  # luma change (after a 3x3 blur) that counts as a change
    min_sharpness: float = 0.2  # finest-octave detail over the next octave (see sharpness)


def _luma(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB -> float32 (T, H, W) luma, 0-255."""
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _sampled(luma: np.ndarray) -> np.ndarray:
    """``SAMPLE_FRAMES`` of the clip's frames (T, H, W), evenly spread."""
    return luma[np.linspace(0, len(luma) - 1, min(len(luma), SAMPLE_FRAMES)).astype(int)]


def exposure(sampled: np.ndarray, cfg: FilterConfig) -> tuple[float, float]:
    """Fractions of the sampled luma frames (N, H, W) that are near-black and over-exposed."""
    mean = sampled.mean(axis=(1, 2))
    return float((mean < cfg.dark_below).mean()), float((mean > cfg.bright_above).mean())


def motion(luma: np.ndarray, cfg: FilterConfig) -> float:
    """Mean fraction of pixels whose (3x3-blurred) luma (T, H, W) changes by
    ``change_level`` or more from one frame to the next; 0 for a one-frame clip. Sensor
    noise stays under the level, so a still camera on a still scene scores about 0 however
    noisy it is."""
    if len(luma) < 2:
        return 0.0
    blurred = np.stack([cv2.blur(f, (3, 3)) for f in luma])
    return float((np.abs(np.diff(blurred, axis=0)) >= cfg.change_level).mean())


def sharpness(sampled: np.ndarray) -> float:
    """Variance of the Laplacian over the variance of the Laplacian of a 2x-downsampled
    copy, averaged over the sampled luma frames (N, H, W).

    A plain Laplacian variance measures the scene as much as the focus (a bare table scores
    low however sharp). The ratio compares the finest detail with the next octave of the
    same frame: about 1 or more for a sharp frame, near 0 once the finest octave is blurred
    away, whatever the scene and the resolution."""
    ratios = []
    for luma in sampled:
        fine = cv2.Laplacian(luma, cv2.CV_32F).var()
        small = cv2.resize(luma, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        coarse = cv2.Laplacian(small, cv2.CV_32F).var()
        ratios.append(fine / coarse if coarse > 1e-6 else 1.0)
    return float(np.mean(ratios))


def clip_stats(frames: np.ndarray, cfg: FilterConfig) -> dict[str, float]:
    """Every measure of one clip (uint8 (T, H, W, 3) RGB), for the filters and the
    annotations; the frames are converted to luma once."""
    luma = _luma(frames)
    sampled = _sampled(luma)
    dark, bright = exposure(sampled, cfg)
    return {
        "dark_fraction": dark,
        "bright_fraction": bright,
        "motion": motion(luma, cfg),
        "sharpness": sharpness(sampled),
        "mean_luma": float(sampled.mean()),
    }


def reject_reason(stats: dict[str, float], cfg: FilterConfig) -> str | None:
    """Why a clip with these stats is dropped, or None to keep it."""
    if stats["dark_fraction"] >= cfg.bad_exposure_fraction:
        return "too dark"
    if stats["bright_fraction"] >= cfg.bad_exposure_fraction:
        return "over-exposed"
    if stats["motion"] < cfg.min_motion:
        return "static"
    if stats["sharpness"] < cfg.min_sharpness:
        return "blurred"
    return None
