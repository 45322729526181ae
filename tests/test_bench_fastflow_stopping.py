"""FastFlow's stopping rule in ``bench/vs_fastflow.py``: Lightning's early stopping with the best
checkpoint kept (anomalib's FastFlow config), cross-fitted over two halves of the test split."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

_SPEC = importlib.util.spec_from_file_location(
    "bench_vs_fastflow", Path(__file__).resolve().parents[1] / "bench" / "vs_fastflow.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench     # dataclasses look their module up while the file runs
_SPEC.loader.exec_module(bench)


@pytest.mark.parametrize("values, patience, expected", [
    ([0.5, 0.6, 0.55, 0.55, 0.55, 0.9], 3, (2, 5)),   # three epochs without improvement: stop; 0.9 never seen
    ([0.6, 0.6, 0.6, 0.6], 3, (1, 4)),                 # a tie is no improvement; the first best is kept
    ([0.1, 0.2, 0.3], 3, (3, 3)),                      # still improving at the cap
    ([0.5, 0.4, 0.6, 0.3, 0.3, 0.3, 0.7], 3, (3, 6)),  # the wait restarts at every improvement
    ([1.0, 0.5, 2.0], 1, (1, 2)),
    ([0.7], 3, (1, 1)),
])
def test_early_stopping_follows_lightnings_rule(values, patience, expected):
    assert bench.early_stopping(values, patience) == expected


def test_early_stopping_needs_a_value():
    with pytest.raises(ValueError, match="at least one"):
        bench.early_stopping([])


def test_stratified_halves_split_each_class_in_two():
    labels = np.array([0] * 7 + [1] * 5)
    a, b = bench.stratified_halves(labels, seed=3)
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(12))
    assert (np.sum(labels[a] == 0), np.sum(labels[a] == 1)) == (3, 2)   # the first half rounds down
    assert (np.sum(labels[b] == 0), np.sum(labels[b] == 1)) == (4, 3)
    again = bench.stratified_halves(labels, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((a, b), again))
    assert not np.array_equal(a, bench.stratified_halves(labels, seed=4)[0])


def _curve(n_epochs=5, n=12, size=8, seed=0):
    """Test images with one defect square each (half of them) and FastFlow-like scores after each
    epoch whose localisation differs from epoch to epoch and from image to image."""
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * (n // 2))
    masks = np.zeros((n, size, size), np.uint8)
    masks[labels == 1, 2:4, 3:6] = 1
    curve = []
    for _ in range(n_epochs):
        signal = rng.uniform(0, 2, size=(n, 1, 1))
        maps = (rng.normal(size=(n, size, size)) + signal * masks).astype(np.float32)
        curve.append(bench.EpochScores(maps, maps.reshape(n, -1).max(1).astype(np.float64), 1.0))
    test = (None, masks, labels, list(range(n)))
    return curve, test


def test_held_out_row_scores_each_half_with_the_epoch_picked_on_the_other():
    curve, test = _curve()
    _, masks, labels, _ = test
    rows, info = bench.fastflow_rows(curve, [1.0] * len(curve), n_train=10, test=test, seed=7)
    a, b = bench.stratified_halves(labels, 7)
    held = rows["fastflow_stop_heldout"].scored
    for validation, held_out, name in ((a, b, "half A"), (b, a, "half B")):
        # the pick, recomputed with sklearn's ROC AUC on the validation half's pooled pixels
        aurocs = [roc_auc_score(masks[validation].ravel(), c.maps[validation].ravel()) for c in curve]
        best, stop = bench.early_stopping(aurocs)
        assert info["picks"][name] == (best, stop)
        assert np.array_equal(held.maps[held_out], curve[best - 1].maps[held_out])
        assert np.array_equal(held.scores[held_out], curve[best - 1].scores[held_out])
    whole = [roc_auc_score(masks.ravel(), c.maps.ravel()) for c in curve]
    best, stop = bench.early_stopping(whole)
    assert info["picks"]["test split"] == (best, stop)
    assert np.array_equal(rows["fastflow_stop_test"].scored.maps, curve[best - 1].maps)
    assert rows["fastflow_stop_test"].train_s == stop              # 1 s per epoch, up to the stop
    assert np.array_equal(rows["fastflow"].scored.maps, curve[-1].maps)
    assert rows["fastflow"].train_s == len(curve)
    assert np.allclose([e[1] for e in info["per_epoch"]], whole)
