"""H7 analyzer: the grade on hand-made inputs, the claims' direction on latents whose calibration
is set, exact checks on a stub detector with known latents, the bootstrap against brute-force
resampling, and an end-to-end run on the tiny checkpoints."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from scipy import stats

from mechanism.analyzers.h7_calibration import H7Config, H7Result, analysed_samples, grade, run
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.flow import FlowOutput
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.stats.bootstrap import bootstrap
from mechanism.stats.calibration import qq_correlation, tail_calibration_error
from mechanism.stats.evidence import Status, Verdict

D, GRID = 6, 4
N_GOOD, N_DEFECT = 6, 6
N_IMAGES = N_GOOD + N_DEFECT


# --- rules on hand-made inputs ------------------------------------------------------------------

@pytest.mark.parametrize("qq,tail,expected", [
    (0.9892, 0.2639, "roughly calibrated"),      # the study's numbers
    (0.9990, 0.05, "calibrated"),
    (0.995, 0.10, "calibrated"),                 # both at their thresholds
    (0.9990, 0.1001, "roughly calibrated"),      # tails too far off
    (0.9949, 0.01, "roughly calibrated"),        # QQ just short of 0.995
    (0.9799, 0.01, "not calibrated"),
])
def test_grade(qq, tail, expected):
    words = grade(qq, tail, 1.2)
    assert words.startswith(expected + " (") and f"{qq:.4f}" in words and "z std 1.200" in words


# --- stub detector with known latents ------------------------------------------------------------

def write_dataset(root):
    cat = root / "cat"
    for folder in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (cat / folder).mkdir(parents=True)
    img = np.zeros((32, 32, 3), np.uint8)
    cv2.imwrite(str(cat / "train" / "good" / "000.png"), img)
    for i in range(N_GOOD):
        cv2.imwrite(str(cat / "test" / "good" / f"{i:03d}.png"), img)
    for i in range(N_DEFECT):
        cv2.imwrite(str(cat / "test" / "crack" / f"{i:03d}.png"), img)
        cv2.imwrite(str(cat / "ground_truth" / "crack" / f"{i:03d}_mask.png"), img)
    return root


@pytest.fixture(scope="module")
def stub_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h7"))


def known_features(seed):
    """Features ``(12, D, 4, 4)`` in the reader's order (crack 0..5, then good 0..5): image-level
    shifts, a heavy-tailed channel and a narrow one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_IMAGES, D, GRID, GRID)) + rng.normal(0, 0.3, (N_IMAGES, 1, 1, 1))
    x[:, 1] = rng.standard_t(3, (N_IMAGES, GRID, GRID))
    x[:, 2] *= 0.6
    return torch.tensor(x, dtype=torch.float32)


def stub_detector(features, scale=1.0, tail_weight=0.7, backbone="b0"):
    """``z = scale · features``; ``features(samples)`` picks each sample's row by defect and name."""
    order = {("crack", f"{i:03d}"): i for i in range(N_DEFECT)}
    order.update({("good", f"{i:03d}"): N_DEFECT + i for i in range(N_GOOD)})
    ckpt = SimpleNamespace(grid=(GRID, GRID, D), backbone={"name": backbone},
                           loss=SimpleNamespace(top_k_ratio=0.125, tail_weight=tail_weight,
                                                selection="topk"),
                           data=SimpleNamespace(category="cat", fingerprint="f" * 64),
                           train=SimpleNamespace(seed=0))
    return SimpleNamespace(
        ckpt=ckpt, device=torch.device("cpu"),
        features=lambda samples, cache_dir, progress: features[[order[(s.defect, s.path.stem)]
                                                                for s in samples]],
        flow=lambda x: FlowOutput(scale * x, torch.zeros(len(x), GRID, GRID)))


def test_run_matches_direct_computation(stub_data):
    feats = known_features(0)
    res = run(stub_detector(feats), stub_data, "cat", H7Config(split="all", n_boot=0, batch_size=5), progress=False)
    z = feats.numpy()
    c = res.context
    assert (c.n_images, c.grid_h, c.grid_w, c.n_patches, c.k, c.split) == (12, 4, 4, 16, 2, "test")
    cal = res.candidate
    assert (cal.n_values, cal.n_channels) == (z.size, D)
    assert cal.z_mean.estimate == pytest.approx(z.mean(dtype=np.float64), abs=1e-12)
    assert cal.z_std.estimate == pytest.approx(z.std(dtype=np.float64), rel=1e-12)
    assert cal.qq_correlation.estimate == pytest.approx(qq_correlation(z), abs=1e-12)
    assert cal.tail_error.estimate == pytest.approx(tail_calibration_error(z), abs=1e-12)
    np.testing.assert_allclose(cal.empirical_percentiles, np.percentile(z, np.arange(1, 100)),
                               rtol=1e-6)
    np.testing.assert_allclose(res.theoretical_percentiles, stats.norm.ppf(np.arange(1, 100) / 100))
    assert [q.percentile for q in cal.quantiles] == [1, 2, 5, 95, 98, 99]
    q99 = cal.quantile(99)
    assert q99.empirical == pytest.approx(np.percentile(z, 99), rel=1e-6)
    assert q99.error == pytest.approx(abs(np.percentile(z, 99) - stats.norm.ppf(0.99)), rel=1e-5)
    # 192 values a channel: all enter Shapiro-Wilk
    per_channel = z.transpose(1, 0, 2, 3).reshape(D, -1).astype(np.float64)
    ks = [stats.kstest(v, "norm").pvalue for v in per_channel]
    sw = [stats.shapiro(v).pvalue for v in per_channel]
    np.testing.assert_allclose(cal.channel_ks_p, ks, rtol=1e-6)
    np.testing.assert_allclose(cal.channel_shapiro_p, sw, rtol=1e-5)
    assert cal.mean_ks_p == pytest.approx(np.mean(ks), rel=1e-6)
    assert cal.ks_reject_share == np.mean(np.array(ks) < 0.05)
    np.testing.assert_allclose(cal.channel_std, per_channel.std(1), rtol=1e-6)
    assert cal.shapiro_n == 192
    assert res.baseline is None and res.paired is None
    assert res.grade == grade(cal.qq_correlation.estimate, cal.tail_error.estimate,
                              cal.z_std.estimate)
    assert cal.scale_error.estimate == pytest.approx(abs(z.std(dtype=np.float64) - 1), rel=1e-9)
    assert res.evidence.verdict is Verdict.INCONCLUSIVE and "baseline" in res.evidence.reason
    assert cal.qq_correlation.low is None


def test_split_good_and_seeded_subset(stub_data):
    feats = known_features(1)
    res = run(stub_detector(feats), stub_data, "cat", H7Config(split="good", n_boot=0), progress=False)
    z = feats.numpy()[N_DEFECT:]
    assert (res.context.split, res.context.n_images) == ("test/good", N_GOOD)
    assert res.candidate.qq_correlation.estimate == pytest.approx(qq_correlation(z), abs=1e-12)
    assert H7Config().split == "good"                            # the default (SPEC §7.3)
    cfg = H7Config(split="all", max_images=5, seed=4, n_boot=0)
    picked = analysed_samples(stub_data, "cat", cfg)
    keep = np.sort(np.random.default_rng(4).choice(N_IMAGES, 5, replace=False))
    everything = analysed_samples(stub_data, "cat", H7Config(split="all"))
    assert picked == [everything[i] for i in keep]
    assert analysed_samples(stub_data, "cat", cfg) == picked
    res = run(stub_detector(feats), stub_data, "cat", cfg, progress=False)
    assert res.candidate.z_std.estimate == pytest.approx(feats.numpy()[keep].std(dtype=np.float64))


def test_bootstrap_matches_brute_force_and_paired(stub_data):
    """Intervals from per-image sums / histograms vs recomputation on the resampled raw values
    (the bootstrap's own seeded stream); the candidate is N(0,1)-like, the baseline is 0.7 z."""
    feats = known_features(2)
    cfg = H7Config(split="all", n_boot=200, seed=3)
    res = run(stub_detector(feats), stub_data, "cat", cfg,
              baseline=stub_detector(feats, scale=0.7, tail_weight=0.0), progress=False)
    z = feats.numpy().reshape(N_IMAGES, -1).astype(np.float64)
    brute = bootstrap({
        "std": lambda i: z[i].std(), "mean": lambda i: z[i].mean(),
        "qq": lambda i: qq_correlation(z[i]), "tail": lambda i: tail_calibration_error(z[i]),
        "diff_tail": lambda i: tail_calibration_error(z[i]) - tail_calibration_error(0.7 * z[i]),
        "diff_std": lambda i: z[i].std() - (0.7 * z[i]).std()}, N_IMAGES, 200, seed=3)
    cand, p = res.candidate, res.paired
    for ours, ref, tol in ((cand.z_std, brute["std"], 1e-9), (cand.z_mean, brute["mean"], 1e-9),
                           (p.z_std.difference, brute["diff_std"], 1e-6),   # baseline z: float32
                           # 1,152 values on 1,152 bins: histogram percentiles are near-exact
                           (cand.qq_correlation, brute["qq"], 2e-3),
                           (cand.tail_error, brute["tail"], 0.02),
                           (p.tail_error.difference, brute["diff_tail"], 0.02)):
        assert ours.low == pytest.approx(ref.low, abs=tol)
        assert ours.high == pytest.approx(ref.high, abs=tol)
    assert p.tail_error.candidate == cand.tail_error
    assert p.tail_error.baseline.estimate == pytest.approx(tail_calibration_error(0.7 * z), abs=1e-6)
    assert p.tail_error.difference.estimate == pytest.approx(
        tail_calibration_error(z) - tail_calibration_error(0.7 * z), abs=1e-6)
    assert p.qq_correlation.difference.estimate == pytest.approx(0.0, abs=1e-6)   # scale-free
    # the claims point the way the calibration was set: the candidate is the calibrated one
    for name in ("H7.calibration", "H7.scale"):
        claim = res.evidence.claim(name)
        assert claim.estimate < 0 and claim.high < 0 and claim.n_images == N_IMAGES
        assert claim.status is Status.NOT_RESOLVED and "S = 1 < 3" in claim.reason
    assert p.scale_error.difference.estimate == pytest.approx(
        abs(z.std() - 1) - abs(0.7 * z.std() - 1), abs=1e-6)
    assert res.baseline.z_std.estimate == pytest.approx(0.7 * cand.z_std.estimate, rel=1e-6)
    again = run(stub_detector(feats), stub_data, "cat", cfg,
                baseline=stub_detector(feats, scale=0.7, tail_weight=0.0), progress=False)
    assert again == res                                            # seeded: same output
    assert from_plain(H7Result, json.loads(json.dumps(to_plain(res)))) == res
    md = tables.markdown(res)
    assert "`H7.calibration`" in md and "Grade (a description, not a claim)" in md
    assert "| Tail calibration error |" in md and "(λ = 0)" in md
    rows = {r["measurement"]: r for r in tables.csv_rows(res)}
    assert rows["claim:H7.scale"]["ci_high"] < 0
    assert rows["difference_tail_error"]["ci_high"] < 0
    assert rows["baseline_quantile_99_theoretical"]["estimate"] == pytest.approx(stats.norm.ppf(0.99))


def test_estimates_are_exact_whatever_the_bins_and_without_bootstrap(stub_data):
    feats = known_features(4)
    z = feats.numpy()
    coarse = run(stub_detector(feats), stub_data, "cat",
                 H7Config(split="all", n_boot=20, resample_bins=10),
                 progress=False)
    assert coarse.candidate.qq_correlation.estimate == pytest.approx(qq_correlation(z), abs=1e-12)
    assert coarse.candidate.tail_error.estimate == pytest.approx(tail_calibration_error(z), abs=1e-12)
    res = run(stub_detector(feats), stub_data, "cat", H7Config(split="all", n_boot=0),
              baseline=stub_detector(feats, scale=0.5, tail_weight=0.0), progress=False)
    p = res.paired
    assert p.tail_error.difference.estimate == pytest.approx(
        tail_calibration_error(z) - tail_calibration_error(0.5 * z), abs=1e-6)
    assert p.tail_error.difference.low is None
    assert res.evidence.claim("H7.calibration").status is Status.NOT_RESOLVED
    md = tables.markdown(res)
    assert "no bootstrap intervals" in md


def test_bad_inputs(stub_data):
    feats = known_features(3)
    with pytest.raises(MechanismError):
        H7Config(split="defect")
    with pytest.raises(MechanismError):
        H7Config(max_images=0)
    broken = feats.clone()
    broken[2, 0, 1, 1] = float("nan")
    with pytest.raises(MechanismError, match="non-finite"):
        run(stub_detector(broken), stub_data, "cat", H7Config(split="all", n_boot=0), progress=False)
    with pytest.raises(MechanismError, match="all equal"):
        run(stub_detector(torch.zeros_like(feats)), stub_data, "cat", H7Config(n_boot=0),
            progress=False)


# --- end to end on the tiny checkpoints ---------------------------------------------------------

def test_end_to_end_tiny(tiny_ckpt, tiny_baseline_ckpt, tiny_data, tiny_cache):
    det = load_detector(tiny_ckpt, torch.device("cpu"))
    base = load_detector(tiny_baseline_ckpt, torch.device("cpu"))
    res = run(det, tiny_data, "brick", H7Config(split="all", n_boot=30), baseline=base,
              cache_dir=tiny_cache, progress=False)
    c = res.context
    assert (c.n_patches, c.k, c.grid_h, c.grid_w, c.n_images, c.split) == (16, 2, 4, 4, 8, "test")
    assert res.candidate.n_values == 8 * 112 * 16 and len(res.candidate.channel_ks_p) == 112
    with torch.no_grad():
        feats = det.features(read_split(tiny_data, "brick", "test"), tiny_cache, False)
        z = det.flow(feats).z.numpy()
    assert res.candidate.qq_correlation.estimate == pytest.approx(qq_correlation(z), abs=1e-6)
    q = res.candidate.qq_correlation
    assert q.low <= q.high
    d = to_plain(res)
    assert len(d["candidate"]["empirical_percentiles"]) == 99
    assert len(d["baseline"]["percentile_errors"]) == 99
    assert from_plain(H7Result, json.loads(json.dumps(d))) == res
    md = tables.markdown(res)
    assert f"**Verdict: {res.evidence.verdict.value}** — " in md
    assert "| Percentile | Empirical | Theoretical | Error |" in md and "N = 16" in md


def test_claims_fail_when_tail_training_moves_z_away(stub_data):
    """Candidate over-dispersed (1.5 z), baseline standard: both claims point the other way."""
    feats = known_features(5)
    res = run(stub_detector(feats, scale=1.5), stub_data, "cat", H7Config(split="all", n_boot=100),
              baseline=stub_detector(feats, tail_weight=0.0), progress=False)
    for name in ("H7.calibration", "H7.scale"):
        claim = res.evidence.claim(name)
        assert claim.estimate > 0 and claim.low > 0


def test_seed_differences_over_three_seeds_resolve_the_claims():
    """Three seed pairs whose candidate is N(0, 1) and baseline 0.7·z: both claims hold (S = 3),
    estimates are the mean of the exact per-seed differences."""
    from mechanism.analyzers.h7_calibration import evidence, seed_differences
    from mechanism.analyzers.h7_calibration.latents import ModelLatents
    rng = np.random.default_rng(8)
    pairs = []
    for _ in range(3):
        z = rng.normal(size=(20, 4, 4, 4)).astype(np.float32)
        pairs.append((ModelLatents.from_z(z), ModelLatents.from_z(0.7 * z)))
    diff = seed_differences(pairs, H7Config(n_boot=200, seed=1))
    assert diff.n_seeds == 3 and diff.n_images == 20
    assert diff.scale_error.estimate == pytest.approx(
        np.mean([c.exact["scale_error"] - b.exact["scale_error"] for c, b in pairs]))
    ev = evidence(diff, 20)
    assert all(c.status is Status.HOLDS and c.n_seeds == 3 for c in ev.claims)
    assert ev.verdict is Verdict.SUPPORTED
