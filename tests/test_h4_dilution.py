"""H4: the verdict rule on hand-made inputs, the augmented-view NLL, end-to-end runs on tiny_ckpt."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from mechanism.analyzers.context import Verdict
from mechanism.analyzers.h4_dilution import (BASIS_EFFECTIVE, BASIS_PIXEL_AP, SWEEP_PARAM, H4Config,
                                             H4Result, MeasuredRatios, augmented_nll, best_ratio,
                                             run, verdict)
from mechanism.data.augment import AugmentConfig, draw_view
from mechanism.data.images import load_image
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.flow import patch_nll
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.stats.summary import MetricSummary
from mechanism.sweep.results import read_sweep_results, summarize_sweep
from mechanism.train.loss import tail_k

RATIOS = [0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.50, 1.0]
FALLING = [40.0, 43.0, 23.0, 9.0, 2.0, 0.5, 0.1, 0.02]      # peak at 2%, then strictly falling


# ---- the verdict rule --------------------------------------------------------------------------

def test_best_ratio_prefers_measured_pixel_ap_then_effective_concentration():
    assert best_ratio(RATIOS, FALLING, None) == (0.02, BASIS_EFFECTIVE)
    ap = [None, 0.50, None, 0.60, 0.40, None, None, None]
    assert best_ratio(RATIOS, FALLING, ap) == (0.05, BASIS_PIXEL_AP)
    assert best_ratio(RATIOS, [1.0, 1.0, 0.5, 0, 0, 0, 0, 0], None)[0] == 0.01   # tie → smaller


def test_supported_needs_falling_concentration_and_lower_ap_at_ten_percent():
    ap = [0.50, 0.56, 0.55, 0.53, 0.48, 0.45, 0.40, 0.38]
    v, reason = verdict(RATIOS, FALLING, ap)
    assert v is Verdict.SUPPORTED
    assert "48.00% at 10% < 56.00% at 2%" in reason


def test_without_sweep_the_verdict_is_at_most_partial():
    v, reason = verdict(RATIOS, FALLING, None)
    assert v is Verdict.PARTIAL and "no sweep: performance not measured" in reason
    v, reason = verdict(RATIOS, FALLING, [None, 0.56, None, None, None, None, None, 0.3])
    assert v is Verdict.PARTIAL and "at 10% not measured" in reason


def test_rising_or_flat_concentration_above_the_best_ratio_is_not_supported():
    rising = [40.0, 43.0, 23.0, 9.0, 9.5, 0.5, 0.1, 0.02]
    v, reason = verdict(RATIOS, rising, None)
    assert v is Verdict.NOT_SUPPORTED and "rises from 5% (9×) to 10% (9.5×)" in reason
    # equal values (ratios sharing one k) are allowed as long as it ends lower ...
    shared_k = [5.0, 5.0, 5.0, 5.0, 2.0, 1.0, 0.5, 0.1]
    assert verdict(RATIOS, shared_k, None)[0] is Verdict.PARTIAL
    # ... but not when it never falls
    v, reason = verdict([0.1, 0.5, 1.0], [2.0, 2.0, 2.0], None)
    assert v is Verdict.NOT_SUPPORTED and "does not fall" in reason
    v, reason = verdict(RATIOS, sorted(FALLING), None)    # best = 100 %: nothing above it
    assert v is Verdict.NOT_SUPPORTED and "largest" in reason


def test_pixel_ap_peaking_at_or_above_ten_percent_is_not_supported():
    ap_peak_20 = [0.40, 0.41, 0.42, 0.43, 0.44, 0.50, 0.30, 0.20]
    v, reason = verdict(RATIOS, FALLING, ap_peak_20)
    assert v is Verdict.NOT_SUPPORTED and "peaks at 20%" in reason
    ap_peak_10 = [0.40, 0.41, 0.42, 0.43, 0.50, 0.45, 0.30, 0.20]
    v, reason = verdict(RATIOS, FALLING, ap_peak_10)
    assert v is Verdict.NOT_SUPPORTED and "peaks at 10%" in reason and "no dilution at 10%" in reason
    # a good AP curve cannot rescue concentration that rises above the best ratio
    ap = [0.50, 0.56, 0.55, 0.53, 0.48, 0.45, 0.40, 0.38]
    assert verdict(RATIOS, [1, 2, 3, 4, 5, 6, 7, 8], ap)[0] is Verdict.NOT_SUPPORTED


def test_verdict_rejects_unsorted_ratios():
    with pytest.raises(ValueError):
        verdict([0.1, 0.02], [1.0, 2.0], None)


# ---- measurements on the tiny checkpoint ----------------------------------------------------------

@pytest.fixture(scope="module")
def detector(tiny_ckpt):
    return load_detector(tiny_ckpt, "cpu")


def test_identity_views_reproduce_the_clean_nll(detector, tiny_data, tiny_cache):
    samples = read_split(tiny_data, "brick", "train")
    cfg = H4Config(augment=AugmentConfig(flip_prob=0.0, max_contrast=0.0, max_brightness=0.0,
                                         noise_std=0.0), batch_size=3)
    nll = augmented_nll(detector, samples, [0, 2], cfg, progress=False)
    clean = detector.patch_nll(detector.features(samples, tiny_cache, progress=False))
    for v in (0, 2):
        torch.testing.assert_close(nll[v], clean, rtol=1e-4, atol=1e-4)


def test_each_image_gets_its_own_view_whatever_the_batching(detector, tiny_data):
    """Image i's view v is draw_view(cfg.augment, seed, v, i), applied, scored and mapped back."""
    samples = read_split(tiny_data, "brick", "train")
    cfg = H4Config(augment=AugmentConfig(flip_prob=0.5, noise_std=0.05), seed=3, batch_size=3)
    nll = augmented_nll(detector, samples, [1, 2], cfg, progress=False)
    whole = augmented_nll(detector, samples, [2], dataclasses.replace(cfg, batch_size=8), progress=False)
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
    assert res.verdict in (Verdict.PARTIAL, Verdict.NOT_SUPPORTED)
    assert res.best_basis == BASIS_EFFECTIVE
    again = from_plain(H4Result, json.loads(json.dumps(to_plain(res))))
    assert again == res
    assert run(detector, tiny_data, "brick", cfg, cache_dir=tiny_cache, progress=False) == res
    md = tables.markdown(res)
    assert f"**Verdict: {res.verdict.value}** — {res.verdict_reason}" in md
    assert "| Ratio | k | Amplification |" in md and "Pixel AP" not in md
    assert "N = 16 patches (4×4 grid)" in md and "k_ref = 1" in md and "4 views" in md
    assert len(tables.csv_rows(res)) == 8 and tables.csv_rows(res)[0]["chance_purity"] == 1 / 16


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
