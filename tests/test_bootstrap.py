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


def _exact_two_stage(values: np.ndarray) -> np.ndarray:
    """Every equally likely two-stage resample of ``values (S, n)`` (seeds, then images within
    each drawn seed, both with replacement), statistic = mean over drawn seeds of the mean."""
    import itertools
    s, n = values.shape
    image_draws = list(itertools.product(range(n), repeat=n))
    out = []
    for seeds in itertools.product(range(s), repeat=s):
        for draws in itertools.product(image_draws, repeat=s):
            out.append(np.mean([values[sd, list(d)].mean() for sd, d in zip(seeds, draws)]))
    return np.array(out)


def test_two_stage_matches_brute_force_enumeration():
    from mechanism.stats.bootstrap import seed_mean, two_stage_draws
    values = np.array([[0.0, 1.0, 5.0], [2.0, 2.5, 9.0]])       # 2 seeds × 3 images
    exact = _exact_two_stage(values)                             # 4 · 27² = 2916 outcomes
    assert len(exact) == 2916
    per_seed = [lambda i, v=v: float(v[i].mean()) for v in values]
    draws = two_stage_draws({"m": seed_mean(per_seed)}, [3, 3], 40000, seed=0)["m"]
    se = exact.std() / np.sqrt(len(draws))
    assert draws.mean() == pytest.approx(exact.mean(), abs=4 * se)
    assert draws.std() == pytest.approx(exact.std(), rel=0.02)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):                        # the whole distribution
        t = np.quantile(exact, q)
        assert (draws <= t).mean() == pytest.approx((exact <= t).mean(), abs=0.01)


def test_two_stage_pairs_baseline_and_candidate_within_a_seed():
    from mechanism.stats.bootstrap import seed_mean, two_stage_bootstrap
    rng = np.random.default_rng(4)
    seed_effect = np.array([0.0, 3.0, -3.0])[:, None]           # seeds differ a lot
    base = seed_effect + rng.normal(0, 1, (3, 50))
    cand = base + 0.2                                            # same seed, same images: +0.2
    stats = {"diff": seed_mean([lambda i, s=s: float(cand[s, i].mean() - base[s, i].mean())
                                for s in range(3)]),
             "cand": seed_mean([lambda i, s=s: float(cand[s, i].mean()) for s in range(3)])}
    out = two_stage_bootstrap(stats, [50, 50, 50], 500, seed=1)
    assert out["diff"].low == pytest.approx(0.2) and out["diff"].high == pytest.approx(0.2)
    assert out["cand"].high - out["cand"].low > 2.0            # the seed spread is in the interval


def test_two_stage_with_one_seed_is_the_image_bootstrap():
    from mechanism.stats.bootstrap import seed_mean, two_stage_bootstrap
    x = np.random.default_rng(5).normal(size=40)
    one = two_stage_bootstrap({"m": seed_mean([lambda i: float(x[i].mean())])}, [40], 300, seed=2)
    assert one["m"] == bootstrap({"m": lambda i: float(x[i].mean())}, 40, 300, seed=2)["m"]


def test_crossed_two_stage_matches_brute_force_enumeration():
    """One test set shared by the seeds: seeds drawn with replacement, one image draw for all."""
    import itertools
    from mechanism.stats.bootstrap import seed_mean, two_stage_draws
    values = np.array([[0.0, 1.0, 5.0], [2.0, 2.5, 9.0]])
    exact = np.array([np.mean([values[sd, list(d)].mean() for sd in seeds])
                      for seeds in itertools.product(range(2), repeat=2)
                      for d in itertools.product(range(3), repeat=3)])         # 4 · 27 outcomes
    per_seed = [lambda i, v=v: float(v[i].mean()) for v in values]
    draws = two_stage_draws({"m": seed_mean(per_seed)}, [3, 3], 40000, seed=0,
                            shared_images=True)["m"]
    assert draws.std() == pytest.approx(exact.std(), rel=0.02)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        t = np.quantile(exact, q)
        assert (draws <= t).mean() == pytest.approx((exact <= t).mean(), abs=0.01)
    nested = _exact_two_stage(values)
    assert exact.std() > nested.std()          # nesting hides the shared images' variance
    with pytest.raises(MechanismError):
        two_stage_draws({"m": seed_mean(per_seed)}, [3, 4], 10, 0, shared_images=True)


def test_seeds_bootstrap_is_the_crossed_two_stage_mean_of_each_seeds_statistic():
    """Against the brute-force enumeration of crossed resamples (2 seeds × 3 images): its
    estimate is the mean over seeds, its draws follow the exact distribution, one seed gives
    ``bootstrap``, and a statistic undefined for a seed is left out."""
    import itertools
    from mechanism.stats.bootstrap import seeds_bootstrap
    values = np.array([[0.0, 1.0, 5.0], [2.0, 2.5, 9.0]])
    per_seed = [{"m": lambda i, v=v: float(v[i].mean())} for v in values]
    per_seed[0]["only_first"] = lambda i: 1.0
    out = seeds_bootstrap(per_seed, 3, 4000, seed=1)
    assert set(out) == {"m"}
    assert out["m"].estimate == pytest.approx(values.mean())
    exact = np.array([np.mean([values[sd, list(d)].mean() for sd in seeds])
                      for seeds in itertools.product(range(2), repeat=2)
                      for d in itertools.product(range(3), repeat=3)])
    low, high = np.quantile(exact, [0.025, 0.975])
    assert out["m"].low == pytest.approx(low, abs=0.15) and out["m"].high == pytest.approx(high, abs=0.15)
    x = np.random.default_rng(5).normal(size=40)
    stat = {"m": lambda i: float(x[i].mean())}
    assert seeds_bootstrap([stat], 40, 300, seed=2) == bootstrap(stat, 40, 300, seed=2)
    with pytest.raises(MechanismError):
        seeds_bootstrap([], 3, 10, 0)
