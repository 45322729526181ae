"""The report's observed effect: exact point metrics, paired intervals, refusal of mismatched images."""
import json
from pathlib import Path

import numpy as np
import pytest

from mechanism.data.mvtec import Sample
from mechanism.errors import MechanismError
from mechanism.eval.evaluate import Evaluation
from mechanism.eval.metrics import detection_metrics
from mechanism.eval.observed_effect import ObservedEffect, observed_effect
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables


def _evaluation(rng, maps_shift=0.0, names=None, map_score="latent"):
    n = 16
    labels = np.array([0] * 6 + [1] * 10)
    masks = np.zeros((n, 16, 16), np.uint8)
    masks[6:, 4:9, 5:10] = 1
    maps = (rng.normal(size=masks.shape) + (1.0 + maps_shift) * masks).astype(np.float32)
    scores = maps.reshape(n, -1).max(1)
    names = names or [f"{i:03d}.png" for i in range(n)]
    samples = [Sample(Path(p), "toy", "good" if l == 0 else "hole", int(l), None) for p, l in zip(names, labels)]
    return Evaluation(detection_metrics(scores, labels, maps, masks), np.zeros((n, 2, 2)),
                      np.zeros((n, 2, 2)), maps, masks, labels, scores, samples, map_score, "max", 4.0)


def test_same_model_gives_zero_difference_and_exact_point_metrics():
    ev = _evaluation(np.random.default_rng(0))
    oe = observed_effect(ev, ev, "a", "a", n_boot=200, seed=1)
    for key, p in oe.metrics.items():
        assert p.baseline.estimate == p.candidate.estimate == getattr(ev.metrics, key)
        assert (p.difference.estimate, p.difference.low, p.difference.high) == (0.0, 0.0, 0.0)
        assert p.baseline.low <= p.baseline.estimate <= p.baseline.high
    assert oe.n_good == 6 and oe.n_defective == 10


def test_a_better_model_gets_a_positive_paired_difference_and_round_trips():
    rng = np.random.default_rng(0)
    base, better = _evaluation(rng), _evaluation(rng, maps_shift=2.0)
    oe = observed_effect(base, better, "base", "tail", n_boot=300, seed=0)
    assert oe.metrics["pixel_ap"].difference.low > 0
    assert from_plain(ObservedEffect, json.loads(json.dumps(to_plain(oe)))) == oe
    assert "Pixel AP" in tables.markdown(oe) and "pts" in tables.markdown(oe)


def test_different_test_images_are_refused():
    rng = np.random.default_rng(0)
    other = _evaluation(rng, names=[f"x{i}.png" for i in range(16)])
    with pytest.raises(MechanismError, match="different test images"):
        observed_effect(_evaluation(rng), other, "a", "b")


def test_differently_scored_evaluations_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(MechanismError, match="scored differently"):
        observed_effect(_evaluation(rng), _evaluation(rng, map_score="nll"), "a", "b")
