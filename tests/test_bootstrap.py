"""The bootstrap against known sampling distributions."""
import numpy as np
import pytest

from mechanism.errors import MechanismError
from mechanism.stats.bootstrap import bootstrap


def test_mean_interval_matches_normal_theory():
    x = np.random.default_rng(0).normal(5.0, 2.0, size=400)
    ci = bootstrap({"mean": lambda i: x[i].mean()}, len(x), 2000, seed=1)["mean"]
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.low == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert ci.high == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)


def test_seeded_and_paired_difference_is_narrower_than_separate():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, 300)
    cand = base + 0.1 + rng.normal(0, 0.05, 300)     # strongly paired
    stats = {"a": lambda i: base[i].mean(), "b": lambda i: cand[i].mean(),
             "diff": lambda i: cand[i].mean() - base[i].mean()}
    r1 = bootstrap(stats, 300, 500, seed=3)
    r2 = bootstrap(stats, 300, 500, seed=3)
    assert r1 == r2
    assert r1["diff"].low > 0.08 and r1["diff"].high < 0.12
    assert (r1["diff"].high - r1["diff"].low) < 0.2 * (r1["a"].high - r1["a"].low)


def test_no_bootstrap_and_non_finite_resamples():
    x = np.array([0.0, 0.0, 1.0])
    ci = bootstrap({"m": lambda i: x[i].mean()}, 3, 0, seed=0)["m"]
    assert ci.low is None and ci.format() == "0.3333"
    ratio = bootstrap({"r": lambda i: 1.0 / x[i].sum() if x[i].sum() else np.nan}, 3, 200, seed=0)["r"]
    assert ratio.n_finite < 200 and "non-finite" in ratio.note


def test_bad_arguments():
    with pytest.raises(MechanismError):
        bootstrap({}, 0, 10, 0)
    with pytest.raises(MechanismError):
        bootstrap({}, 3, -1, 0)
