"""The report's sweep sections on hand-made runs: best values, ties, the random-k pairing."""
import pytest

from mechanism.report.sweeps import ablation, control_markdown, random_control
from mechanism.sweep.results import SweepRun


def _run(param, lam, r, seed, ap, auroc=0.9, selection="topk", category="grass"):
    value = f"{lam:g}" if param == "tail_weight" else f"{r:g}"
    return SweepRun(param, value, lam, r, selection, seed, category, auroc, 0.8, ap, 0.5, 10.0)


RUNS = [_run("tail_weight", 0.0, 0.02, s, ap) for s, ap in ((0, 0.10), (1, 0.12))] + \
       [_run("tail_weight", 0.7, 0.02, s, ap) for s, ap in ((0, 0.14), (1, 0.16))] + \
       [_run("tail_weight", 1.0, 0.02, s, ap) for s, ap in ((0, 0.15), (1, 0.15))] + \
       [_run("tail_top_k_ratio", 0.7, r, 0, ap) for r, ap in ((0.02, 0.14), (0.1, 0.14))] + \
       [_run("tail_top_k_ratio", 0.7, 0.02, 0, 0.11, auroc=0.8, selection="random"),
        _run("tail_weight", 0.7, 0.02, 0, 0.5, category="brick")]


def test_ablation_summarises_over_seeds_and_picks_the_best_mean_pixel_ap():
    lam = ablation(RUNS, "tail_weight", "grass")
    assert list(lam.values) == [0.0, 0.7, 1.0] and lam.best == 0.7      # 0.15 mean ties 0.15: smaller
    assert lam.values[0.0]["pixel_ap"].mean == pytest.approx(0.11)
    assert lam.values[0.0]["pixel_ap"].n == 2 and "r = 0.02" in lam.fixed
    assert "**0.7**" in lam.markdown() and "not resolved" not in lam.markdown()


def test_ablation_ties_go_to_the_smaller_value_and_single_seeds_are_flagged():
    ratio = ablation(RUNS, "tail_top_k_ratio", "grass")
    assert ratio.best == 0.02 and "λ = 0.7" in ratio.fixed
    assert "not resolved" in ratio.markdown()
    assert ablation(RUNS, "tail_top_k_ratio", "gravel") is None


def test_random_control_pairs_same_lambda_and_ratio_and_counts_a_shared_run_once():
    rows = random_control(RUNS, "grass")
    assert len(rows) == 1
    row = rows[0]
    assert (row.tail_weight, row.top_k_ratio) == (0.7, 0.02)
    # top-k runs at (0.7, 0.02): seeds 0 (in both sweeps, counted once) and 1
    assert row.topk["pixel_ap"].n == 2 and row.topk["pixel_ap"].mean == pytest.approx(0.15)
    assert row.difference("pixel_ap") == pytest.approx(0.04)
    assert "+4.00 pts" in control_markdown(rows)
    assert random_control(RUNS, "brick") == []
