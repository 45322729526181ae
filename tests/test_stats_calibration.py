"""Calibration statistics against analytic cases, scipy references and brute-force resamples."""
import numpy as np
import pytest
from scipy import stats

from mechanism.stats.calibration import (QQ_PERCENTILES, TAIL_PERCENTILES, PooledHistograms,
                                         PooledMoments, channel_normality, normal_quantiles,
                                         qq_correlation, qq_correlation_of_percentiles,
                                         qq_percentiles, quantile_table, tail_calibration_error,
                                         tail_error_of_percentiles)

MEAN_ABS_TAIL_PPF = np.abs(stats.norm.ppf(np.array(TAIL_PERCENTILES) / 100)).mean()  # ≈ 2.008


def quantile_grid(ppf, n_intervals=100 * 500):
    """Values whose linear percentiles at 1..99 are exactly ``ppf(p/100)``: the point
    ``(n−1)·p/100`` is an integer index; the two infinite ends are replaced by finite values."""
    values = ppf(np.arange(n_intervals + 1) / n_intervals)
    values[0], values[-1] = values[1] - 1.0, values[-2] + 1.0
    return values


# --- QQ correlation and tail error -----------------------------------------------------------

def test_standard_normal_sample_is_calibrated():
    z = np.random.default_rng(0).normal(size=400_000)
    assert qq_correlation(z) > 0.999
    assert tail_calibration_error(z) < 0.02


@pytest.mark.parametrize("sigma", [0.7, 1.0, 1.3])
def test_scaled_normal_exact_percentiles(sigma):
    # z ~ N(0, σ²): percentiles σ·Φ⁻¹(p) → QQ r = 1, tail error = |1 − σ|·mean|Φ⁻¹(p)|
    z = quantile_grid(lambda p: sigma * stats.norm.ppf(p))
    np.testing.assert_allclose(qq_percentiles(z), sigma * normal_quantiles(QQ_PERCENTILES), atol=1e-12)
    assert qq_correlation(z) == pytest.approx(1.0, abs=1e-12)
    assert tail_calibration_error(z) == pytest.approx(abs(1 - sigma) * MEAN_ABS_TAIL_PPF, abs=1e-12)


def test_scaled_normal_sample():
    z = np.random.default_rng(1).normal(0, 0.7, size=400_000)
    assert qq_correlation(z) > 0.999
    assert tail_calibration_error(z) == pytest.approx(0.3 * MEAN_ABS_TAIL_PPF, abs=0.01)  # ≈ 0.602


def test_heavy_tails_lower_the_qq_correlation():
    p = QQ_PERCENTILES / 100
    exact = np.corrcoef(stats.norm.ppf(p), stats.t.ppf(p, 3))[0, 1]          # ≈ 0.984
    grid = quantile_grid(lambda q: stats.t.ppf(q, 3))
    assert qq_correlation(grid) == pytest.approx(exact, abs=1e-12)
    sample = qq_correlation(np.random.default_rng(2).standard_t(3, size=400_000))
    assert sample == pytest.approx(exact, abs=2e-3)
    assert sample < 0.99


def test_from_percentiles_matches_study_formula():
    z = np.random.default_rng(3).laplace(size=(50, 7, 11))
    theo = stats.norm.ppf(np.linspace(0.01, 0.99, 99))
    emp = np.percentile(z.ravel(), np.linspace(1, 99, 99))
    assert qq_correlation(z) == pytest.approx(np.corrcoef(theo, emp)[0, 1], abs=1e-12)
    tail = np.abs(stats.norm.ppf([0.01, 0.02, 0.05, 0.95, 0.98, 0.99])
                  - np.percentile(z.ravel(), [1, 2, 5, 95, 98, 99])).mean()
    assert tail_calibration_error(z) == pytest.approx(tail, abs=1e-12)


def test_undefined_and_bad_inputs():
    assert np.isnan(qq_correlation(np.ones(1000)))
    assert np.isnan(qq_correlation_of_percentiles(np.zeros(99)))
    with pytest.raises(ValueError):
        qq_correlation(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError):
        tail_calibration_error(np.array([]))
    with pytest.raises(ValueError):
        tail_error_of_percentiles(np.zeros(98))


def test_quantile_table():
    z = np.random.default_rng(4).normal(0.1, 0.8, size=10_000)
    rows = quantile_table(z)
    assert [r.percentile for r in rows] == [1, 5, 95, 99]
    for r in rows:
        assert r.empirical == pytest.approx(np.percentile(z, r.percentile))
        assert r.theoretical == pytest.approx(stats.norm.ppf(r.percentile / 100))
        assert r.error == pytest.approx(abs(r.empirical - r.theoretical))
    assert quantile_table(z, (50,))[0].theoretical == 0.0


# --- per-channel normality --------------------------------------------------------------------

def channels(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(size=n), rng.normal(0.3, 1.0, n), rng.uniform(-2, 2, n),
                            rng.normal(0, 0.6, n)])


def test_channel_normality_matches_scipy_per_channel():
    z = channels(3000, 5)
    res = channel_normality(z, seed=0)                    # n ≤ 5000: every value enters Shapiro
    assert res.shapiro_n == 3000
    for c in range(z.shape[1]):
        assert res.ks_p[c] == pytest.approx(stats.kstest(z[:, c], "norm").pvalue, rel=1e-12)
        assert res.shapiro_p[c] == pytest.approx(stats.shapiro(z[:, c]).pvalue, rel=1e-9)
    np.testing.assert_allclose(res.mean, z.mean(0))
    np.testing.assert_allclose(res.std, z.std(0))
    assert res.ks_p[0] > 0.01 and res.shapiro_p[0] > 0.01          # N(0, 1)
    assert res.ks_p[1] < 1e-10 and res.ks_p[3] < 1e-10              # shifted, narrow
    assert res.shapiro_p[2] < 1e-10 and res.shapiro_p[3] > 0.01     # uniform; normal but σ ≠ 1
    assert res.reject_share(res.ks_p, 0.05) == 0.75


def test_shapiro_subsample_is_seeded():
    z = channels(12_000, 6)
    a, b, c = (channel_normality(z, seed=s, max_shapiro=5000) for s in (1, 1, 2))
    assert a.shapiro_n == 5000
    np.testing.assert_array_equal(a.shapiro_p, b.shapiro_p)
    assert not np.array_equal(a.shapiro_p, c.shapiro_p)
    np.testing.assert_array_equal(a.ks_p, c.ks_p)                   # KS uses every value
    for ch in (0, 3):                           # > 10,000 values: asymptotic p, ~1% off exact
        asymp, exact = (stats.kstest(z[:, ch], "norm", method=m).pvalue for m in ("asymp", "exact"))
        assert a.ks_p[ch] == pytest.approx(asymp, rel=1e-12)
        assert a.ks_p[ch] == pytest.approx(exact, rel=0.03)
    rows = np.sort(np.random.default_rng(1).choice(12_000, 5000, replace=False))
    assert a.shapiro_p[2] == pytest.approx(stats.shapiro(z[rows, 2]).pvalue, rel=1e-9)


def test_channel_normality_bad_inputs():
    with pytest.raises(ValueError):
        channel_normality(np.zeros(10), seed=0)
    with pytest.raises(ValueError):
        channel_normality(np.zeros((2, 3)), seed=0)
    with pytest.raises(ValueError):
        channel_normality(np.full((10, 2), np.inf), seed=0)


# --- resampled pools --------------------------------------------------------------------------

def resample_errors(values, n_bins, n_resamples, seed):
    """Largest |histogram − exact| over resamples, for the percentiles, QQ r and tail error."""
    hist = PooledHistograms.from_values(values, n_bins)
    rng = np.random.default_rng(seed)
    worst = np.zeros(3)
    for _ in range(n_resamples):
        idx = rng.integers(0, len(values), len(values))
        approx = hist.percentiles(np.bincount(idx, minlength=len(values)), QQ_PERCENTILES)
        exact = np.percentile(values[idx].ravel(), QQ_PERCENTILES)
        worst = np.maximum(worst, [
            np.abs(approx - exact).max(),
            abs(qq_correlation_of_percentiles(approx) - qq_correlation_of_percentiles(exact)),
            abs(tail_error_of_percentiles(approx) - tail_error_of_percentiles(exact))])
    return worst


@pytest.mark.parametrize("draw,bounds", [
    # 40 images × 5000 values, 4000 bins (50 values a bin); measured worst over 30 resamples:
    # N(0,1) + image shifts 2.8e-3 / 3e-7 / 3.4e-4, t(3) 8.6e-3 / 5e-5 / 1.9e-3
    (lambda rng: rng.normal(size=(40, 5000)) + rng.normal(0, 0.3, (40, 1)), (5e-3, 1e-5, 1e-3)),
    (lambda rng: rng.standard_t(3, (40, 5000)), (2e-2, 2e-4, 5e-3)),
])
def test_histogram_percentiles_approximate_exact_resamples(draw, bounds):
    values = draw(np.random.default_rng(7))
    worst = resample_errors(values, 4000, 30, seed=8)
    assert np.all(worst < bounds), worst


def test_histogram_bins_hold_equal_counts_and_weights_select_units():
    rng = np.random.default_rng(9)
    values = rng.normal(size=(6, 1000))
    hist = PooledHistograms.from_values(values, 100)
    assert len(hist.edges) == 101 and hist.counts.sum() == 6000
    assert np.ptp(hist.counts.sum(0)) <= 2                          # equal-count bins
    weights = np.array([0, 0, 3, 0, 0, 0])                          # image 2 only
    approx = hist.percentiles(weights, [10, 50, 90])
    np.testing.assert_allclose(approx, np.percentile(values[2], [10, 50, 90]), atol=0.05)


def test_histogram_of_equal_values():
    hist = PooledHistograms.from_values(np.full((3, 4), 2.5), 10)
    np.testing.assert_array_equal(hist.percentiles(np.ones(3), [1, 50, 99]), 2.5)


def test_moments_match_concatenated_resample():
    rng = np.random.default_rng(10)
    values = rng.normal(3.0, 0.5, size=(20, 300)) + rng.normal(0, 0.2, (20, 1))
    moments = PooledMoments.from_values(values)
    for _ in range(5):
        idx = rng.integers(0, 20, 20)
        w = np.bincount(idx, minlength=20).astype(float)
        assert moments.mean(w) == pytest.approx(values[idx].mean(), rel=1e-12)
        assert moments.std(w) == pytest.approx(values[idx].std(), rel=1e-10)
