import math

import numpy as np
import pytest

from cosmos_env.eval.policy_ranking import (
    episode_bootstrap_pearson,
    mmrv,
    pearson,
    spearman,
    wilson_interval,
)


def test_mmrv_is_zero_when_the_order_agrees():
    real = [0.9, 0.5, 0.1, 0.0]
    assert mmrv([0.8, 0.6, 0.3, 0.1], real) == 0.0


def test_mmrv_takes_each_policys_worst_violation():
    sim = [0.2, 0.5, 0.9]  # the world model puts the worst policy (real 0.1) on top
    real = [0.8, 0.5, 0.1]
    # every pair is ordered wrongly: row maxima are 0.7, 0.4, 0.7
    assert mmrv(sim, real) == pytest.approx((0.7 + 0.4 + 0.7) / 3)


def test_mmrv_counts_a_tie_that_reality_breaks():
    # only the worse policy's row sees "sim_1 < sim_0" disagree with "real_1 < real_0"
    assert mmrv([0.5, 0.5], [0.6, 0.2]) == pytest.approx(0.4 / 2)


def test_correlations_on_known_values():
    sim, real = [0.1, 0.2, 0.3, 0.9], [0.0, 0.3, 0.2, 1.0]
    assert pearson(sim, real) == pytest.approx(np.corrcoef(sim, real)[0, 1])
    assert spearman(sim, real) == pytest.approx(0.8)
    assert math.isnan(pearson([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))


def test_rate_vectors_must_match():
    with pytest.raises(ValueError, match="same length"):
        mmrv([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same length >= 2"):
        pearson([0.1], [0.2])


def test_wilson_interval_brackets_the_rate_and_stays_in_0_1():
    low, high = wilson_interval(45, 50)
    assert low < 0.9 < high
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0
    assert wilson_interval(25, 50) == pytest.approx((0.366, 0.634), abs=1e-3)
    with pytest.raises(ValueError, match="n >= 1"):
        wilson_interval(0, 0)


def test_episode_bootstrap_interval_is_wide_when_one_episode_decides_r():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 0.05, (64, 16))
    close = true + rng.normal(0, 0.005, true.shape)
    low, high = episode_bootstrap_pearson(close, true)
    assert 0.97 < low <= pearson(close.ravel(), true.ravel()) <= high <= 1.0
    spiked = close.copy()
    spiked[40, 12:14] += 1.0  # one episode's false success bonus
    low_s, high_s = episode_bootstrap_pearson(spiked, true)
    assert pearson(spiked.ravel(), true.ravel()) < 0.8 and high_s > 0.95 and low_s < 0.8
    assert episode_bootstrap_pearson(np.ones((4, 3)), true[:4, :3]) == pytest.approx(
        [math.nan, math.nan], nan_ok=True
    )
