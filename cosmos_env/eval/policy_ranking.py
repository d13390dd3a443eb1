"""Does a world model rank policies the way reality does? Agreement statistics between
success rates measured in a world model and in the real world (here: MuJoCo).

SimplerEnv (Li et al. 2024) reports Pearson's r and the mean maximum rank violation
(MMRV); WorldGym reports Pearson's r. Spearman's rho is added for rank agreement.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion ``successes / n``."""
    if n < 1:
        raise ValueError(f"a success rate needs n >= 1 episodes, got {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _pair(sim, real) -> tuple[np.ndarray, np.ndarray]:
    sim, real = np.asarray(sim, np.float64), np.asarray(real, np.float64)
    if sim.shape != real.shape or sim.ndim != 1 or len(sim) < 2:
        raise ValueError(
            f"need two 1-d arrays of the same length >= 2 (one rate per policy), got "
            f"{sim.shape} and {real.shape}"
        )
    return sim, real


def mmrv(sim, real) -> float:
    """Mean maximum rank violation (SimplerEnv): for each policy i, the largest real gap
    ``|real_i - real_j|`` over the policies j that the world model orders the other way
    round (``sim_i < sim_j`` differs from ``real_i < real_j``); averaged over policies.
    0 when every pair is ordered as in reality; lower is better."""
    sim, real = _pair(sim, real)
    wrong = (sim[:, None] < sim[None, :]) != (real[:, None] < real[None, :])
    gaps = np.abs(real[:, None] - real[None, :]) * wrong
    return float(gaps.max(axis=1).mean())


def pearson(sim, real) -> float:
    """Pearson's r of the two success-rate vectors (nan when either is constant)."""
    sim, real = _pair(sim, real)
    if np.ptp(sim) == 0 or np.ptp(real) == 0:
        return float("nan")
    return float(stats.pearsonr(sim, real).statistic)


def spearman(sim, real) -> float:
    """Spearman's rho (ties get average ranks; nan when either is constant)."""
    sim, real = _pair(sim, real)
    if np.ptp(sim) == 0 or np.ptp(real) == 0:
        return float("nan")
    return float(stats.spearmanr(sim, real).statistic)


def episode_bootstrap_pearson(
    pred: np.ndarray, true: np.ndarray, resamples: int = 1000, seed: int = 0
) -> list[float]:
    """95% interval [low, high] of the Pearson r of per-step values ``pred`` against
    ``true`` (each (N, T): N episodes of T steps), resampling whole episodes with
    replacement: how much the r of N episodes would move on another N. Resamples where
    either side is constant are left out; [nan, nan] when all are."""
    rng = np.random.default_rng(seed)
    n = len(pred)
    rs = [
        pearson(pred[rows].ravel(), true[rows].ravel())
        for rows in rng.integers(0, n, (resamples, n))
    ]
    rs = np.asarray([r for r in rs if np.isfinite(r)])
    if not len(rs):
        return [float("nan"), float("nan")]
    return [float(np.quantile(rs, 0.025)), float(np.quantile(rs, 0.975))]
