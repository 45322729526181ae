"""H3 analyzer: exact gradients of an identity flow (closed form), batched backward against a
per-image loop, the bootstrap against recomputation, the verdict rule on hand-made inputs, and
an end-to-end run on the tiny checkpoints."""
import json
import math

import numpy as np
import pytest
import torch

from mechanism.analyzers.context import AnalysisContext, Verdict
from mechanism.analyzers.h3_gradient import (BaselineMeasurement, H3Config, H3Result, measure,
                                             patch_gradients, run, summarise, verdict)
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.flow import FlowConfig, PatchFlow, patch_nll
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.stats.inequality import gini

D, H, W = 6, 3, 4
N = H * W
R = 0.25                      # k = round(12 · 0.25) = 3
K = 3


def identity_flow(spatial_context: bool = False) -> PatchFlow:
    """Freshly built: zero-initialised subnet outputs and global log-scales, so every block is a
    channel permutation and NLL_i = ‖x_i‖²/(2D) + ½log 2π."""
    return PatchFlow(D, H, W, FlowConfig(n_blocks=2, hidden=8, pos_channels=4,
                                         spatial_context=spatial_context)).eval()


def random_flow(seed: int = 0) -> PatchFlow:
    """Spatial context on, every parameter random: patches interact within an image."""
    flow = identity_flow(spatial_context=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return flow


def features(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, D, H, W, generator=torch.Generator().manual_seed(seed))


def context(n: int, n_boot: int = 0, seed: int = 0) -> AnalysisContext:
    return AnalysisContext("toy", "toy", "train", n, H, W, N, K, R, seed, n_boot)


def closed_form(x: torch.Tensor, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """g_i = ‖x_i‖/D · ((1−λ)/N + λ/k·[i in tail]) and the tail mask (top-k by ‖x_i‖), (n, N)."""
    norm = x.double().norm(dim=1).flatten(1).numpy()
    tail = np.zeros_like(norm, dtype=bool)
    np.put_along_axis(tail, np.argsort(-norm, axis=1)[:, :K], True, axis=1)
    return norm / D * ((1 - lam) / N + lam / K * tail), tail


# --- exact gradients ---------------------------------------------------------------------------

def test_identity_flow_gradients_match_closed_form():
    x = features(5)
    lambdas = (0.0, 0.5, 1.0)
    grads = patch_gradients(identity_flow(), x, lambdas, R)
    for lam in lambdas:
        expected, tail = closed_form(x, lam)
        np.testing.assert_allclose(grads.norms[lam].flatten(1).numpy(), expected, rtol=1e-5,
                                   atol=1e-9)
        np.testing.assert_array_equal(grads.tail.flatten(1).numpy(), tail)
    assert (grads.norms[1.0][~grads.tail] == 0).all()     # no interaction: exactly 0


def test_identity_flow_summary_matches_hand_computation():
    x = features(7, seed=1)
    cand = measure(identity_flow(), x, (0.0, 0.5), R, batch_size=3)
    result = summarise(cand, context(7))
    norm = x.double().norm(dim=1).flatten(1).numpy()
    _, tail = closed_form(x, 0.0)
    base_ratio = norm[tail].mean() / norm[~tail].mean()
    mean_only, mixed = result.conditions
    assert mean_only.ratio.estimate == pytest.approx(base_ratio, rel=1e-5)
    assert mean_only.tail_gradient.estimate == pytest.approx(norm[tail].mean() / (D * N), rel=1e-5)
    assert mean_only.nontail_gradient.estimate == pytest.approx(norm[~tail].mean() / (D * N), rel=1e-5)
    # λ = 0.5: tail patches weigh (0.5/N + 0.5/k), the others 0.5/N → ratio × (1 + N/k).
    assert mixed.ratio.estimate == pytest.approx(base_ratio * (1 + N / K), rel=1e-5)
    assert result.amplification.estimate == pytest.approx(1 + N / K, rel=1e-5)
    assert result.tail_gain.estimate == pytest.approx(0.5 + 0.5 * N / K, rel=1e-5)
    assert result.tail_gain_theory == pytest.approx(0.5 + 0.5 * N / K)
    assert result.theoretical_amplification == N / K
    assert result.amplification_share == pytest.approx((1 + N / K) / (N / K), rel=1e-5)
    # Gini at λ = 0 is the Gini of the feature norms (scale invariance).
    assert mean_only.gini.estimate == pytest.approx(gini(norm).mean(), rel=1e-5)
    # Figure data: mean map and per-image means.
    g0, _ = closed_form(x, 0.0)
    np.testing.assert_allclose(np.array(mean_only.mean_gradient_map).ravel(), g0.mean(0), rtol=1e-5)
    np.testing.assert_allclose(mean_only.image_tail_gradient,
                               [row[t].mean() for row, t in zip(g0, tail)], rtol=1e-5)


def test_unbounded_ratio_without_interaction_is_none_with_reason():
    x = features(4)
    result = summarise(measure(identity_flow(), x, (0.0, 1.0), R, batch_size=4), context(4, 50))
    tail_aware = result.conditions[1]
    assert tail_aware.ratio is None
    assert tail_aware.nontail_gradient.estimate == 0.0
    assert "exactly 0" in tail_aware.ratio_note and "unbounded" in tail_aware.ratio_note
    assert result.amplification is None and result.amplification_unbounded
    assert result.amplification_share is None
    assert "unbounded" in result.amplification_note
    assert result.tail_gain.estimate == pytest.approx(N / K, rel=1e-5)   # exactly N/k
    assert result.verdict is Verdict.SUPPORTED and "unbounded" in result.verdict_reason
    text = json.dumps(to_plain(result), allow_nan=False)                 # no inf, no NaN
    assert from_plain(H3Result, json.loads(text)) == result
    assert "undefined" in tables.markdown(result) and "inf" not in tables.markdown(result)


def test_all_zero_features_make_every_statistic_undefined():
    x = torch.zeros(3, D, H, W)
    result = summarise(measure(identity_flow(), x, (0.0, 1.0), R, batch_size=3), context(3, 20))
    for c in result.conditions:
        assert c.ratio is None and c.gini is None
        assert "every patch gradient is exactly 0" in c.ratio_note
        assert "Gini undefined" in c.gini_note
    assert result.amplification is None and not result.amplification_unbounded
    assert result.tail_gain is None
    assert result.verdict is Verdict.NOT_SUPPORTED and "undefined" in result.verdict_reason
    json.dumps(to_plain(result), allow_nan=False)


def test_batched_backward_equals_per_image_loop_with_spatial_context():
    flow = random_flow()
    x = features(5, seed=2)
    lambdas = (0.0, 0.3, 1.0)
    batched = patch_gradients(flow, x, lambdas, R)
    for b in range(len(x)):
        xb = x[b:b + 1].clone().requires_grad_(True)
        nll = patch_nll(flow(xb)).flatten()
        top = nll.topk(K).values.mean()
        for lam in lambdas:
            loss = (1 - lam) * nll.mean() + lam * top
            (grad,) = torch.autograd.grad(loss, xb, retain_graph=True)
            torch.testing.assert_close(batched.norms[lam][b], grad[0].norm(dim=0),
                                       rtol=1e-4, atol=1e-7)
    # Patches interact: at λ = 1 the tail's neighbours receive gradient, so the ratio is finite.
    assert (batched.norms[1.0][~batched.tail] > 0).any()
    result = summarise(measure(flow, x, lambdas, R, batch_size=2), context(5))
    assert result.conditions[-1].ratio is not None and result.amplification is not None


def test_per_patch_flow_gradients_match_autograd_of_each_loss():
    """Without patch interaction one backward pass serves every λ: check it against autograd of
    each λ's loss, and that the non-tail gradient at λ = 1 is exactly zero."""
    flow = identity_flow(spatial_context=False)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    assert not flow.patches_interact
    x = features(3, seed=5)
    lambdas = (0.0, 0.3, 1.0)
    got = patch_gradients(flow, x, lambdas, R)
    for lam in lambdas:
        xr = x.clone().requires_grad_(True)
        nll = patch_nll(flow(xr)).flatten(1)
        loss = ((1 - lam) * nll.mean(1) + lam * nll.topk(K, dim=1).values.mean(1)).sum()
        (grad,) = torch.autograd.grad(loss, xr)
        torch.testing.assert_close(got.norms[lam], grad.norm(dim=1), rtol=1e-5, atol=1e-9)
    assert (got.norms[1.0][~got.tail] == 0).all()


def test_measure_does_not_depend_on_batch_size():
    flow, x = random_flow(1), features(6, seed=3)
    one = measure(flow, x, (0.0, 1.0), R, batch_size=1)
    all_ = measure(flow, x, (0.0, 1.0), R, batch_size=6)
    for a, b in zip(one, all_):
        np.testing.assert_allclose(a.tail_sum, b.tail_sum, rtol=1e-5)
        np.testing.assert_allclose(a.nontail_sum, b.nontail_sum, rtol=1e-5)


def test_bootstrap_equals_recomputation_and_paired_differences():
    flow, other, x = random_flow(2), random_flow(3), features(9, seed=4)
    n_boot, seed = 60, 5
    cand = measure(flow, x, (0.0, 1.0), R, batch_size=4)
    base = measure(other, x, (0.0, 1.0), R, batch_size=4)
    result = summarise(cand, context(9, n_boot, seed), BaselineMeasurement("other", 0.0, base))
    grads = {name: patch_gradients(f, x, (0.0, 1.0), R) for name, f in (("c", flow), ("b", other))}

    def ratio(g, idx, lam):
        norms, tail = g.norms[lam][idx].numpy(), g.tail[idx].numpy()
        return norms[tail].mean() / norms[~tail].mean()

    rng = np.random.default_rng(seed)
    draws = {"ratio1": [], "amp": [], "diff_amp": [], "gini1": []}
    for _ in range(n_boot):
        idx = rng.integers(0, 9, size=9)
        amp_c = ratio(grads["c"], idx, 1.0) / ratio(grads["c"], idx, 0.0)
        amp_b = ratio(grads["b"], idx, 1.0) / ratio(grads["b"], idx, 0.0)
        draws["ratio1"].append(ratio(grads["c"], idx, 1.0))
        draws["amp"].append(amp_c)
        draws["diff_amp"].append(amp_c - amp_b)
        draws["gini1"].append(gini(grads["c"].norms[1.0][idx].flatten(1).numpy()).mean())
    got = {"ratio1": result.conditions[1].ratio, "amp": result.amplification,
           "diff_amp": result.paired.amplification.difference, "gini1": result.conditions[1].gini}
    for name, values in draws.items():
        low, high = np.percentile(values, [2.5, 97.5])
        assert got[name].low == pytest.approx(low, rel=1e-4), name
        assert got[name].high == pytest.approx(high, rel=1e-4), name
    full = np.arange(9)
    assert result.paired.amplification.baseline.estimate == pytest.approx(
        ratio(grads["b"], full, 1.0) / ratio(grads["b"], full, 0.0), rel=1e-4)
    same = summarise(cand, context(9, n_boot, seed), BaselineMeasurement("same", 0.0, cand))
    for stat in (*same.paired.ratio, same.paired.amplification):
        assert (stat.difference.estimate, stat.difference.low, stat.difference.high) == (0, 0, 0)


# --- verdict rule ---------------------------------------------------------------------------

def test_verdict_study_numbers_are_supported():
    v, reason = verdict(42.3, 196, 4)                # 42.3× vs N/k = 49 → 86%
    assert v is Verdict.SUPPORTED
    assert "42.3×" in reason and "86%" in reason and "24.5×" in reason


@pytest.mark.parametrize("amplification,expected", [
    (24.5, Verdict.SUPPORTED),       # exactly 0.5·N/k
    (24.4, Verdict.PARTIAL),
    (2.01, Verdict.PARTIAL),
    (2.0, Verdict.NOT_SUPPORTED),    # PARTIAL needs > 2
    (1.0, Verdict.NOT_SUPPORTED),
    (0.5, Verdict.NOT_SUPPORTED),
])
def test_verdict_rule(amplification, expected):
    assert verdict(amplification, 196, 4)[0] is expected


def test_verdict_when_amplification_is_none():
    assert verdict(None, 16, 2, unbounded=True, note="x")[0] is Verdict.SUPPORTED
    v, reason = verdict(None, 16, 2, unbounded=False, note="every patch gradient is exactly 0")
    assert v is Verdict.NOT_SUPPORTED and "every patch gradient is exactly 0" in reason


# --- configuration ----------------------------------------------------------------------------

def test_config_validation_and_sorting():
    assert H3Config(lambdas=(1, 0, 0.5)).lambdas == (0.0, 0.5, 1.0)
    for bad in [(0.5, 1.0), (0.0,), (0.0, 1.5), (0.0, 1.0, 1.0), (-0.1, 0.0)]:
        with pytest.raises(MechanismError):
            H3Config(lambdas=bad)
    with pytest.raises(MechanismError):
        H3Config(top_k_ratio=0.0)
    with pytest.raises(MechanismError):
        summarise(measure(identity_flow(), features(2), (0.5, 1.0), R, 2), context(2))


def test_non_finite_nll_is_an_error():
    x = features(2)
    x[1, 0, 0, 0] = float("inf")
    with pytest.raises(MechanismError, match="non-finite"):
        patch_gradients(identity_flow(), x, (0.0, 1.0), R)


# --- end to end ---------------------------------------------------------------------------------

def test_end_to_end_tiny(tiny_ckpt, tiny_baseline_ckpt, tiny_data, tiny_cache):
    det, base = load_detector(tiny_ckpt), load_detector(tiny_baseline_ckpt)
    cfg = H3Config(n_boot=30, batch_size=3, lambdas=(0.0, 0.7, 1.0))
    result = run(det, tiny_data, "brick", cfg, baseline=base, cache_dir=tiny_cache, progress=False)
    c = result.context
    assert (c.n_patches, c.k, c.grid_h, c.grid_w, c.n_images, c.split) == (16, 2, 4, 4, 8, "train")
    assert [x.tail_weight for x in result.conditions] == [0.0, 0.7, 1.0]
    assert result.theoretical_amplification == 8.0
    assert result.amplification is not None      # spatial context: non-tail gradient > 0 at λ = 1
    for x in result.conditions:
        assert x.ratio.low <= x.ratio.estimate <= x.ratio.high
        assert len(x.image_tail_gradient) == 8 and np.array(x.mean_gradient_map).shape == (4, 4)
    assert len(result.paired.ratio) == 3 and result.paired.amplification is not None
    text = json.dumps(to_plain(result), allow_nan=False)
    assert from_plain(H3Result, json.loads(text)) == result
    md = tables.markdown(result)
    assert f"**Verdict: {result.verdict.value}** — {result.verdict_reason}" in md
    for needle in ("| Condition | Tail gradient | Non-tail gradient | Ratio | Gini |",
                   "Mean-only (λ=0)", "Tail-aware (λ=1)", "Mixed (λ=0.7)", "N/k = 16/2 = 8×",
                   "N = 16", "k = 2", "4×4", "B = 30", "‖∂L/∂x"):
        assert needle in md, needle
    rows = tables.csv_rows(result)
    assert {r["measurement"] for r in rows} >= {"ratio", "gini", "amplification",
                                                "paired_amplification_difference", "verdict"}
    assert math.isclose(next(r["estimate"] for r in rows if r["measurement"] == "amplification"),
                        result.amplification.estimate)
    # Same seed → same result.
    again = run(det, tiny_data, "brick", cfg, baseline=base, cache_dir=tiny_cache, progress=False)
    assert again == result
