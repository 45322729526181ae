"""The observed effect: exact point metrics (mean over seeds), paired intervals over seeds ×
images against brute-force recomputation, refusal of mismatched images and unpaired seeds."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mechanism.data.mvtec import Sample
from mechanism.errors import MechanismError
from mechanism.eval.evaluate import Evaluation
from mechanism.eval.metrics import detection_metrics
from mechanism.eval.observed_effect import ObservedEffect, effect_draws, observed_effect
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables


def _evaluation(rng, maps_shift=0.0, names=None, map_score="latent", category="toy"):
    n = 16
    labels = np.array([0] * 6 + [1] * 10)
    masks = np.zeros((n, 16, 16), np.uint8)
    masks[6:, 4:9, 5:10] = 1
    maps = (rng.normal(size=masks.shape) + (1.0 + maps_shift) * masks).astype(np.float32)
    scores = maps.reshape(n, -1).max(1)
    names = names or [f"{i:03d}.png" for i in range(n)]
    samples = [Sample(Path(p), category, "good" if l == 0 else "hole", int(l), None) for p, l in zip(names, labels)]
    return Evaluation(detection_metrics(scores, labels, maps, masks), np.zeros((n, 2, 2)),
                      np.zeros((n, 2, 2)), maps, masks, labels, scores, samples, map_score, "max", 4.0)


def test_same_model_gives_zero_difference_and_exact_point_metrics():
    ev = _evaluation(np.random.default_rng(0))
    oe = observed_effect([ev], [ev], "a", "a", n_boot=200, seed=1)
    assert set(oe.metrics) == {"pixel_ap", "image_auroc", "pixel_auroc", "aupro"}
    for key, p in oe.metrics.items():
        assert p.baseline.estimate == p.candidate.estimate == getattr(ev.metrics, key)
        assert (p.difference.estimate, p.difference.low, p.difference.high) == (0.0, 0.0, 0.0)
        assert p.baseline.low <= p.baseline.estimate <= p.baseline.high
    assert oe.n_good == 6 and oe.n_defective == 10 and oe.n_seeds == 1


def test_a_better_model_gets_a_positive_paired_difference_and_round_trips():
    rng = np.random.default_rng(0)
    base, better = _evaluation(rng), _evaluation(rng, maps_shift=2.0)
    oe = observed_effect([base], [better], "base", "tail", n_boot=300, seed=0)
    assert oe.metrics["pixel_ap"].difference.low > 0 and oe.metrics["aupro"].difference.low > 0
    assert from_plain(ObservedEffect, json.loads(json.dumps(to_plain(oe)))) == oe
    assert "Pixel AP" in tables.markdown(oe) and "pts" in tables.markdown(oe)


def test_different_test_images_are_refused():
    rng = np.random.default_rng(0)
    other = _evaluation(rng, names=[f"x{i}.png" for i in range(16)])
    with pytest.raises(MechanismError, match="different test images"):
        observed_effect([_evaluation(rng)], [other], "a", "b")
    with pytest.raises(MechanismError, match="paired seeds"):
        observed_effect([_evaluation(rng)] * 2, [_evaluation(rng)], "a", "b")


def test_differently_scored_evaluations_are_refused_unless_two_detectors_are_compared():
    rng = np.random.default_rng(0)
    base, other = _evaluation(rng), _evaluation(rng, map_score="nll")
    with pytest.raises(MechanismError, match="scored differently"):
        observed_effect([base], [other], "a", "b")
    with pytest.raises(MechanismError, match="scored differently"):
        effect_draws([base], [other], 50)
    # a benchmark of two methods (bench/vs_fastflow.py): the same draws as equally scored twins
    twin = dataclasses.replace(other, map_score=base.map_score)
    np.testing.assert_array_equal(effect_draws([base], [other], 50, same_scoring=False)["pixel_ap"],
                                  effect_draws([base], [twin], 50)["pixel_ap"])


def test_seeds_times_images_interval_equals_brute_force_recomputation():
    """Three seeds on one test set: estimates are the seed means of the exact metrics; every
    resample's value (the drawn seeds on one shared image draw; images streamed by seed and category, ``test_bootstrap`` checks the
    draws by enumeration) is recomputed by sklearn on the materialised images (few score levels,
    so the bins are exact)."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from mechanism.eval.metrics.aupro import aupro
    from mechanism.stats.bootstrap import resample_seed, two_stage_resamples

    def coarse(ev):
        import dataclasses
        ev.maps[:] = np.round(ev.maps * 2) / 2
        ev.scores[:] = ev.maps.reshape(len(ev.maps), -1).max(1)
        return dataclasses.replace(ev, metrics=detection_metrics(ev.scores, ev.labels, ev.maps, ev.masks))

    rng = np.random.default_rng(3)
    bases = [coarse(_evaluation(rng)) for _ in range(3)]
    cands = [coarse(_evaluation(rng, maps_shift=0.5 * s)) for s in range(3)]
    oe = observed_effect(bases, cands, "b", "c", n_boot=40, seed=7)
    assert oe.n_seeds == 3
    for key in ("pixel_ap", "aupro"):
        p = oe.metrics[key]
        assert p.difference.estimate == pytest.approx(
            np.mean([getattr(c.metrics, key) - getattr(b.metrics, key) for b, c in zip(bases, cands)]))

    def metric(ev, idx, key):
        maps, masks = ev.maps[idx], ev.masks[idx]
        if key == "pixel_ap":
            return average_precision_score(masks.ravel(), maps.ravel())
        if key == "pixel_auroc":
            return roc_auc_score(masks.ravel(), maps.ravel())
        if key == "image_auroc":
            return roc_auc_score(ev.labels[idx], ev.scores[idx])
        return aupro(maps, masks)

    for key in ("pixel_ap", "pixel_auroc", "image_auroc", "aupro"):
        draws = [np.mean([metric(cands[s], idx, key) - metric(bases[s], idx, key) for s, idx in r])
                 for r in two_stage_resamples([16] * 3, 40, 7, shared_images=True,
                                             image_seed=resample_seed(7, bases[0].samples[0].category))]
        lo, hi = np.percentile(draws, [2.5, 97.5])
        got = oe.metrics[key].difference
        assert (got.low, got.high) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9)), key


def test_binned_intervals_are_centred_on_the_exact_estimate():
    """Continuous maps: binning biases AP a little; each role's draws are shifted by its offset,
    so the full-sample value of the shifted statistic is the exact one."""
    rng = np.random.default_rng(5)
    ev = _evaluation(rng)
    oe = observed_effect([ev], [ev], "a", "a", n_boot=300, seed=2, n_bins=16)
    p = oe.metrics["pixel_ap"].baseline
    assert p.low < ev.metrics.pixel_ap < p.high
