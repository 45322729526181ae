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
    ([0.5, 0.6, 0.6, 0.6, 0.6], 3, (2, 5)),            # … also after an improvement
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


def _curve(strength=None, n=12, size=8, seed=0):
    """Test images with one defect square each (half of them) and FastFlow-like scores after each
    epoch whose localisation differs from epoch to epoch and from image to image: the defect's
    signal is ``strength[epoch]`` times a random factor per image (``strength``: a random one per
    image and epoch, five epochs), on a level that drifts with the epoch."""
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * (n // 2))
    masks = np.zeros((n, size, size), np.uint8)
    masks[labels == 1, 2:4, 3:6] = 1
    strength = rng.uniform(0, 2, size=(5, n)) if strength is None else \
        np.outer(strength, rng.uniform(0.5, 1.5, size=n))
    curve = []
    for epoch, signal in enumerate(strength):
        maps = (epoch - 3.0 + rng.normal(size=(n, size, size)) + signal[:, None, None] * masks).astype(np.float32)
        curve.append(bench.EpochScores(maps, maps.reshape(n, -1).max(1).astype(np.float64), 10.0 + epoch))
    return curve, (None, masks, labels, list(range(n)))


def _check_rows(curve, test, seconds, seed):
    """``fastflow_rows`` against the rule recomputed from sklearn's ROC AUC; returns the picks."""
    _, masks, labels, _ = test
    rows, info = bench.fastflow_rows(curve, seconds, n_train=10, test=test, seed=seed)
    a, b = bench.stratified_halves(labels, seed)
    held = rows["fastflow_stop_heldout"].scored
    for validation, held_out, name in ((a, b, "half A"), (b, a, "half B")):
        aurocs = [roc_auc_score(masks[validation].ravel(), c.maps[validation].ravel()) for c in curve]
        best, stop = bench.early_stopping(aurocs)
        assert info["picks"][name] == (best, stop)
        # scored by the epoch picked on the other half, standardised by that half's good pixels
        # where the halves disagree (else one model's raw maps)
        good = curve[best - 1].maps[validation][labels[validation] == 0].astype(np.float64)
        expected = curve[best - 1].maps[held_out]
        if info["picks"]["half A"][0] != info["picks"]["half B"][0]:
            expected = (expected - good.mean()) / good.std()
        assert np.allclose(held.maps[held_out], expected, atol=1e-5)
        assert np.allclose(held.scores[held_out], held.maps[held_out].reshape(len(held_out), -1).max(1),
                           atol=1e-5)
    whole = [roc_auc_score(masks.ravel(), c.maps.ravel()) for c in curve]
    best, stop = bench.early_stopping(whole)
    assert info["picks"]["test split"] == (best, stop)
    assert np.array_equal(rows["fastflow_stop_test"].scored.maps, curve[best - 1].maps)
    assert rows["fastflow_stop_test"].train_s == sum(seconds[:stop])
    assert rows["fastflow_stop_heldout"].train_s == sum(seconds[:max(info["picks"]["half A"][1],
                                                                     info["picks"]["half B"][1])])
    assert np.array_equal(rows["fastflow"].scored.maps, curve[-1].maps)
    assert rows["fastflow"].train_s == sum(seconds)
    assert {r.infer_ms for r in rows.values()} == {float(np.median([c.ms for c in curve]))}
    assert np.allclose([e[1] for e in info["per_epoch"]], whole)
    return info["picks"]


def test_held_out_row_scores_each_half_with_the_epoch_picked_on_the_other():
    curve, test = _curve()
    picks = _check_rows(curve, test, seconds=[1.0, 2.0, 4.0, 8.0, 16.0], seed=7)
    assert picks["half A"][0] != picks["half B"][0]     # the halves disagree: a leak would show


def test_rows_stop_where_the_rule_fires_before_the_cap():
    curve, test = _curve(strength=[1.0, 3.0, 0.6, 0.5, 0.4, 0.3, 5.0])
    picks = _check_rows(curve, test, seconds=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0], seed=1)
    assert picks["test split"] == (2, 5)
    assert picks["half A"][0] == picks["half B"][0]     # the halves agree: raw maps


def test_early_stopping_agrees_with_lightning():
    """The same sequences through Lightning's own EarlyStopping and ModelCheckpoint comparisons."""
    torch = pytest.importorskip("torch")
    callbacks = pytest.importorskip("lightning.pytorch.callbacks")
    sequences = [[0.5, 0.6, 0.55, 0.55, 0.55, 0.9], [0.6, 0.6, 0.6, 0.6], [0.5, 0.6, 0.6, 0.6, 0.6],
                 [0.1, 0.2, 0.3], [0.5, 0.4, 0.6, 0.3, 0.3, 0.3, 0.7], [0.3, 0.31, 0.2, 0.32, 0.1, 0.1, 0.1]]
    for values in sequences:
        stopper = callbacks.EarlyStopping(monitor="pixel_AUROC", mode="max", patience=3)
        best_epoch, best, stop = 0, None, len(values)
        for epoch, value in enumerate(values, start=1):
            current = torch.tensor(value)
            if best is None or torch.gt(current, best):      # ModelCheckpoint(mode="max"), save_top_k=1
                best_epoch, best = epoch, current
            should_stop, _ = stopper._evaluate_stopping_criteria(current)
            if should_stop:
                stop = epoch
                break
        assert bench.early_stopping(values) == (best_epoch, stop), values
