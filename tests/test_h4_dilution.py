"""H4: the best ratio and the claims on hand-made inputs, the augmented-view NLL, end-to-end runs
on tiny_ckpt."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from mechanism.analyzers.h4_dilution import (BASIS_EFFECTIVE, BASIS_PIXEL_AP, SWEEP_PARAM, H4Config,
                                             H4Result, MeasuredRatios, PerformanceContrast, RatioRow,
                                             augmented_nll, best_ratio, evidence, run)
from mechanism.data.augment import AugmentConfig, draw_view
from mechanism.data.images import load_image
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.flow import patch_nll
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.evidence import Status, Verdict
from mechanism.stats.summary import MetricSummary
from mechanism.sweep.results import read_sweep_results, summarize_sweep
from mechanism.train.loss import tail_k

RATIOS = [0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.50, 1.0]
FALLING = [40.0, 43.0, 23.0, 9.0, 2.0, 0.5, 0.1, 0.02]      # peak at 2%, then strictly falling


# ---- best ratio and claims --------------------------------------------------------------------

def test_best_ratio_prefers_measured_pixel_ap_then_effective_concentration():
    assert best_ratio(RATIOS, FALLING, None) == (0.02, BASIS_EFFECTIVE)
    ap = [None, 0.50, None, 0.56, 0.40, None, None, 0.30]
    assert best_ratio(RATIOS, FALLING, ap) == (0.05, BASIS_PIXEL_AP)
    assert best_ratio(RATIOS, [1.0, 1.0, 0.5, 0, 0, 0, 0, 0], None)[0] == 0.01   # tie → smaller


def iv(est, low, high):
    return Interval(est, low, high, 0.95, 100, 100)


def row(ratio, k, purity, oracle, forced=False):
    return RatioRow(ratio, k, 784 / k, purity, oracle, iv(purity.estimate * 784 / k, None, None),
                    None, None, forced)


def effect(diff, seeds):
    metrics = {m: PairedStat(iv(0.2, 0.1, 0.3), iv(0.2, 0.1, 0.3), diff)
               for m in ("pixel_ap", "image_auroc", "pixel_auroc", "aupro")}
    return ObservedEffect("c", "b", "a", seeds, 40, 60, metrics, 0, 100, "maps", "m")


def test_claims_on_hand_made_rows_and_contrasts():
    rows = [row(0.02, 16, iv(0.3, 0.25, 0.35), 1.0),
            row(1.0, 784, iv(16 / 784, 16 / 784, 16 / 784), 16 / 784, forced=True)]
    contrasts = (PerformanceContrast(0.10, effect(iv(0.01, 0.005, 0.02), 3), ""),
                 PerformanceContrast(1.0, effect(iv(0.01, 0.005, 0.02), 1), ""))
    ev = evidence(rows, 16 / 784, contrasts, 64, "runs/x", mean_loss_check=0.0)
    assert [c.name for c in ev.claims] == ["H4.selection", "H4.performance(10%)",
                                           "H4.performance(100%)"]
    assert ev.claim("H4.selection").status is Status.HOLDS         # 0.25 > 16/784
    assert "precision purity/oracle = 0.300" in ev.claim("H4.selection").note
    assert ev.claim("H4.performance(10%)").status is Status.HOLDS  # 3 seeds, interval above 0
    one_seed = ev.claim("H4.performance(100%)")
    assert one_seed.status is Status.NOT_RESOLVED and "S = 1 < 3" in one_seed.reason
    assert ev.verdict is Verdict.INCONCLUSIVE
    forced, mean_loss = ev.identities                               # purity at r = 100% is fixed
    assert forced.name == "H4.purity(r=100%)" and forced.agrees
    assert mean_loss.name == "H4.r100_is_mean_loss" and mean_loss.agrees
    assert evidence(rows, 16 / 784, contrasts, 64, "runs/x", 0.004).identities[1].agrees is False
    assert evidence(rows, 16 / 784, contrasts, 64, "runs/x", 6e-6).identities[1].agrees       # rounding
    assert evidence(rows, 16 / 784, contrasts, 64, "runs/x", 2e-4).identities[1].agrees is False
    no_sweep = evidence(rows, 16 / 784, (), 64, None)
    assert all("no sweep" in c.note for c in no_sweep.claims[1:])


# ---- measurements on the tiny checkpoint ----------------------------------------------------------

@pytest.fixture(scope="module")
def detector(tiny_ckpt):
    return load_detector(tiny_ckpt, "cpu")


def test_identity_views_reproduce_the_clean_nll(detector, tiny_data, tiny_cache):
    samples = read_split(tiny_data, "brick", "train")
    cfg = H4Config(augment=AugmentConfig(flip_prob=0.0, max_contrast=0.0, max_brightness=0.0,
                                         noise_std=0.0), batch_size=3)
    (nll,) = augmented_nll([detector], samples, [0, 2], cfg, progress=False)
    clean = detector.patch_nll(detector.features(samples, tiny_cache, progress=False))
    for v in (0, 2):
        torch.testing.assert_close(nll[v], clean, rtol=1e-4, atol=1e-4)


def test_each_image_gets_its_own_view_whatever_the_batching(detector, tiny_data):
    """Image i's view v is draw_view(cfg.augment, seed, v, i), applied, scored and mapped back."""
    samples = read_split(tiny_data, "brick", "train")
    cfg = H4Config(augment=AugmentConfig(flip_prob=0.5, noise_std=0.05), seed=3, batch_size=3)
    (nll,) = augmented_nll([detector], samples, [1, 2], cfg, progress=False)
    (whole,) = augmented_nll([detector], samples, [2], dataclasses.replace(cfg, batch_size=8),
                             progress=False)
    torch.testing.assert_close(whole[2], nll[2], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(nll[1], nll[2])
    for i in (0, 4, 7):
        view = draw_view(cfg.augment, 3, 2, i)
        image = torch.from_numpy(load_image(samples[i].path, detector.backbone.cfg.input_size))
        with torch.no_grad():
            expected = patch_nll(detector.flow(detector.backbone(view.apply(image)[None])))[0]
        torch.testing.assert_close(nll[2][i], view.to_original_grid(expected), rtol=1e-4, atol=1e-4)


def test_end_to_end_default(detector, tiny_data, tiny_cache, tiny_ckpt):
    cfg = H4Config(n_boot=50, batch_size=4)
    res = run(detector, tiny_data, "brick", cfg, cache_dir=tiny_cache, progress=False)
    c = res.context
    assert (c.n_patches, c.grid_h, c.grid_w, c.k, c.n_images, c.split) == (16, 4, 4, 2, 8, "train")
    assert res.k_ref == 1 and res.chance_purity == 1 / 16 and res.n_views == 4
    assert [r.ratio for r in res.rows] == RATIOS
    assert [r.k for r in res.rows] == [tail_k(16, r) for r in RATIOS] == [1, 1, 1, 1, 2, 3, 8, 16]
    for row in res.rows:
        assert row.amplification == 16 / row.k
        assert row.oracle_purity == min(1.0, 1 / row.k)
        assert 0.0 <= row.purity.estimate <= row.oracle_purity
        assert row.purity.low <= row.purity.estimate <= row.purity.high
        assert row.effective_concentration.estimate == pytest.approx(row.purity.estimate * row.amplification)
        assert row.pixel_ap is None
    assert res.rows[-1].purity.estimate == pytest.approx(1 / 16)   # k = N selects everything
    assert res.rows[-1].purity_forced and not res.rows[0].purity_forced
    assert res.evidence.identities[0].agrees                        # the forced purity, checked
    assert res.evidence.verdict is Verdict.INCONCLUSIVE             # no sweep: performance open
    assert res.best_basis == BASIS_EFFECTIVE
    again = from_plain(H4Result, json.loads(json.dumps(to_plain(res))))
    assert again == res
    assert run(detector, tiny_data, "brick", cfg, cache_dir=tiny_cache, progress=False) == res
    md = tables.markdown(res)
    assert f"**Verdict: {res.evidence.verdict.value}** — {res.evidence.reason}" in md
    assert "| Ratio | k | N/k (definition) |" in md and "| Pixel AP |" not in md
    assert "(forced: oracle = chance)" in md
    assert "N = 16 patches (4×4 grid)" in md and "k_ref = 1" in md and "4 views" in md
    rows = tables.csv_rows(res)
    assert len([r for r in rows if r["ratio"] is not None]) == 8 and rows[0]["chance_purity"] == 1 / 16
    assert rows[-1]["measurement"] == "verdict"


def test_end_to_end_with_checkpoints_and_sweep(detector, tiny_data, tiny_cache, tmp_path):
    """Selection and reference from the same checkpoint's clean view: purity = oracle at every r."""
    (tmp_path / "results.csv").write_text(
        "param,value,tail_weight,top_k_ratio,selection,seed,category,image_auroc,pixel_auroc,"
        "pixel_ap,aupro,train_seconds\n"
        "tail_top_k_ratio,0.02,0.7,0.02,topk,0,brick,0.9,0.9,0.60,0.7,1\n"
        "tail_top_k_ratio,0.02,0.7,0.02,topk,1,brick,0.8,0.9,0.50,0.7,1\n"
        "tail_top_k_ratio,0.04,0.7,0.04,topk,0,brick,0.9,0.9,0.52,0.7,1\n"
        "tail_top_k_ratio,0.1,0.7,0.1,topk,0,brick,0.9,0.9,0.40,0.7,1\n")
    cfg = H4Config(n_boot=20)
    measured = MeasuredRatios(str(tmp_path), summarize_sweep(read_sweep_results(tmp_path),
                                                             SWEEP_PARAM, "brick"))
    res = run(detector, tiny_data, "brick", cfg, selection=detector, reference=detector,
              measured=measured, cache_dir=tiny_cache, progress=False)
    assert res.sweep == str(tmp_path)
    assert 0.04 in [r.ratio for r in res.rows] and len(res.rows) == 9
    for row in res.rows:
        assert row.purity.estimate == row.oracle_purity
    measured = {r.ratio: r.pixel_ap for r in res.rows if r.pixel_ap is not None}
    assert set(measured) == {0.02, 0.04, 0.1}
    assert measured[0.02].mean == pytest.approx(0.55) and measured[0.02].n == 2
    assert res.best_ratio == 0.02 and res.best_basis == BASIS_PIXEL_AP and res.n_views is None
    md = tables.markdown(res)
    assert "| Pixel AP | Image AUROC |" in md and "55.00 ± 7.07% (n = 2)" in md and "not measured" in md
    assert "clean view" in res.selection_source and "clean view" in res.reference_source
    assert from_plain(H4Result, json.loads(json.dumps(to_plain(res)))) == res


def test_bad_inputs(tmp_path):
    with pytest.raises(MechanismError, match="does not exist|do not exist"):
        read_sweep_results(tmp_path)           # the sweep the measured columns would come from
    with pytest.raises(MechanismError, match=r"sweep runs/x lists top-k ratio 1.5 outside \(0, 1\]"):
        MeasuredRatios("runs/x", {0.1: {}, 1.5: {"pixel_ap": MetricSummary(0.5, None, 1)}})
    with pytest.raises(MechanismError):
        H4Config(ratios=(0.0, 0.1))
    with pytest.raises(MechanismError):
        H4Config(n_views=0)
    with pytest.raises(MechanismError):
        H4Config(seed=-1)
    assert H4Config(ratios=[0.1, 0.02]).ratios == (0.1, 0.02)
    stored = json.loads(json.dumps(dataclasses.asdict(H4Config(augment=AugmentConfig(noise_std=0.2)))))
    assert H4Config(**stored) == H4Config(augment=AugmentConfig(noise_std=0.2))
    assert np.isclose(H4Config().reference_ratio, 0.02)


def test_h4_analyses_64_images_unless_told_otherwise():
    from mechanism.pipelines.analyze import AnalysisSettings
    assert AnalysisSettings().config_for("H4").max_images == 64
    assert AnalysisSettings().config_for("H1").max_images is None
    assert AnalysisSettings(max_images=10).config_for("H4").max_images == 10
    assert AnalysisSettings(max_images=500).config_for("H4").max_images == 500


# ---- the committed reference tables ---------------------------------------------------------------


def test_seed_replicates_average_each_models_purity(detector, tiny_data, tiny_cache, tiny_baseline_ckpt):
    """A replicate model scored on the views computed once: every purity is the mean of the
    two single-model analyses, and H4.selection carries S = 2."""
    other = load_detector(tiny_baseline_ckpt, "cpu")       # another model, named as seed 1
    other.ckpt = dataclasses.replace(other.ckpt, train=dataclasses.replace(other.ckpt.train, seed=1))
    cfg = H4Config(n_boot=40, batch_size=4, ratios=(0.02, 0.1, 0.5))
    one = [run(d, tiny_data, "brick", cfg, cache_dir=tiny_cache, progress=False) for d in (detector, other)]
    both = run(detector, tiny_data, "brick", cfg, cache_dir=tiny_cache, progress=False, replicates=[other])
    for i, row in enumerate(both.rows):
        assert row.purity.estimate == pytest.approx(np.mean([r.rows[i].purity.estimate for r in one]))
        assert row.purity.low <= row.purity.estimate <= row.purity.high
    assert both.context.n_seeds == 2 and both.evidence.claim("H4.selection").n_seeds == 2
