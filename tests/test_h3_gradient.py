"""H3 analyzer: exact gradients of an identity flow (closed form), the identity checks against
their closed forms, own-path gradients against the autograd Jacobian's diagonal blocks, batched
backward against a per-image loop, the bootstrap against recomputation, the claims, and an
end-to-end run on the tiny checkpoints."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from mechanism.analyzers.context import AnalysisContext
from mechanism.analyzers.h3_gradient import (BaselineMeasurement, H3Config, H3Result,
                                             amplification_identity, measure, patch_gradients,
                                             run, summarise, tail_gain_identity)
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.flow import FlowConfig, PatchFlow, patch_nll
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.evidence import Status, Verdict
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


def summary(cand, ctx, own=0.7, interact=False, direct="same", **kw):
    """``summarise`` of a measurement; ``direct="same"``: the non-interacting case (own paths =
    the measurement)."""
    return summarise(cand, ctx, own, interact, cand if direct == "same" else direct, **kw)


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
    result = summary(cand, context(7), own=0.5)
    norm = x.double().norm(dim=1).flatten(1).numpy()
    _, tail = closed_form(x, 0.0)
    base_ratio = norm[tail].mean() / norm[~tail].mean()
    mean_only, mixed = result.conditions
    assert mean_only.ratio.estimate == pytest.approx(base_ratio, rel=1e-5)
    assert mean_only.tail_gradient.estimate == pytest.approx(norm[tail].mean() / (D * N), rel=1e-5)
    assert mean_only.nontail_gradient.estimate == pytest.approx(norm[~tail].mean() / (D * N), rel=1e-5)
    # λ = 0.5: tail patches weigh (0.5/N + 0.5/k), the others 0.5/N → ratio × (1 + N/k).
    assert mixed.ratio.estimate == pytest.approx(base_ratio * (1 + N / K), rel=1e-5)
    assert mixed.amplification.estimate == pytest.approx(1 + N / K, rel=1e-5)
    assert mixed.tail_gain.estimate == pytest.approx(0.5 + 0.5 * N / K, rel=1e-5)
    assert result.theoretical_amplification == N / K
    # Gini at λ = 0 is the Gini of the feature norms (scale invariance).
    assert mean_only.gini.estimate == pytest.approx(gini(norm).mean(), rel=1e-5)
    # Figure data: mean map and per-image means.
    g0, _ = closed_form(x, 0.0)
    np.testing.assert_allclose(np.array(mean_only.mean_gradient_map).ravel(), g0.mean(0), rtol=1e-5)
    np.testing.assert_allclose(mean_only.image_tail_gradient,
                               [row[t].mean() for row, t in zip(g0, tail)], rtol=1e-5)


def test_unbounded_ratio_without_interaction_is_none_with_reason():
    x = features(4)
    result = summary(measure(identity_flow(), x, (0.0, 1.0), R, batch_size=4), context(4, 50), own=1.0)
    tail_aware = result.conditions[1]
    assert tail_aware.ratio is None
    assert tail_aware.nontail_gradient.estimate == 0.0 and tail_aware.nontail_share.estimate == 0.0
    assert "exactly 0" in tail_aware.ratio_note and "unbounded" in tail_aware.ratio_note
    assert tail_aware.amplification is None and tail_aware.amplification_note.startswith("unbounded")
    assert tail_aware.tail_gain.estimate == pytest.approx(N / K, rel=1e-5)   # exactly N/k
    # non-interacting: no survives_interaction claim; H3.training needs a baseline
    assert [c.name for c in result.evidence.claims] == ["H3.training"]
    assert result.evidence.verdict is Verdict.INCONCLUSIVE and "baseline" in result.evidence.reason
    text = json.dumps(to_plain(result), allow_nan=False)                 # no inf, no NaN
    assert from_plain(H3Result, json.loads(text)) == result
    assert "undefined" in tables.markdown(result) and "inf" not in tables.markdown(result)


def test_all_zero_features_make_every_statistic_undefined():
    x = torch.zeros(3, D, H, W)
    result = summary(measure(identity_flow(), x, (0.0, 0.5, 1.0), R, batch_size=3), context(3, 20),
                     own=0.5, interact=True)
    for c in result.conditions:
        assert c.ratio is None and c.gini is None and c.nontail_share is None
        assert "every patch gradient is exactly 0" in c.ratio_note
        assert "Gini undefined" in c.gini_note
    tail_aware = result.conditions[2]
    assert tail_aware.amplification is None and not tail_aware.amplification_note.startswith("unbounded")
    assert tail_aware.tail_gain is None
    survives = result.evidence.claim("H3.survives_interaction")
    assert survives.status is Status.NOT_RESOLVED and "undefined" in survives.reason
    assert all(i.measured is None for i in result.evidence.identities)
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
    result = summary(measure(flow, x, lambdas, R, batch_size=2), context(5), own=0.3,
                     interact=True, direct=None)
    assert result.conditions[-1].ratio is not None and result.conditions[-1].amplification is not None


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
    result = summary(cand, context(9, n_boot, seed), own=1.0, interact=True, direct=None,
                     baseline=BaselineMeasurement("other", 0.0, base))
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
    got = {"ratio1": result.conditions[1].ratio, "amp": result.conditions[1].amplification,
           "diff_amp": result.paired.amplification[1].difference, "gini1": result.conditions[1].gini}
    for name, values in draws.items():
        low, high = np.percentile(values, [2.5, 97.5])
        assert got[name].low == pytest.approx(low, rel=1e-4), name
        assert got[name].high == pytest.approx(high, rel=1e-4), name
    full = np.arange(9)
    assert result.paired.amplification[1].baseline.estimate == pytest.approx(
        ratio(grads["b"], full, 1.0) / ratio(grads["b"], full, 0.0), rel=1e-4)
    assert result.paired.amplification[0] is None                        # λ = 0 has none
    same = summary(cand, context(9, n_boot, seed), own=1.0, interact=True, direct=None,
                   baseline=BaselineMeasurement("same", 0.0, cand))
    for stat in (*same.paired.ratio, same.paired.amplification[1]):
        assert (stat.difference.estimate, stat.difference.low, stat.difference.high) == (0, 0, 0)



def test_seed_replicates_average_each_seeds_statistics():
    """A second training seed's model (a replicate): every estimate is the mean of the two
    single-seed summaries, the paired differences too; the claim carries S = 2; a replicate
    measured on other images is refused."""
    flows, x = [random_flow(s) for s in (4, 5, 6, 7)], features(8, seed=6)
    cand, rep, base, rep_base = (measure(f, x, (0.0, 0.7, 1.0), R, batch_size=4) for f in flows)
    bm = lambda m: BaselineMeasurement("b", 0.0, m)
    ctx = context(8, 40, 3)
    one = [summary(c, ctx, interact=True, direct=None, baseline=bm(b))
           for c, b in ((cand, base), (rep, rep_base))]
    both = summary(cand, dataclasses.replace(ctx, training_seeds=(0, 1)), interact=True,
                   direct=None, baseline=bm(base), replicates=[(rep, bm(rep_base))])
    for i in (1, 2):
        for field in ("ratio", "amplification", "tail_gain", "gini"):
            assert getattr(both.conditions[i], field).estimate == pytest.approx(
                np.mean([getattr(r.conditions[i], field).estimate for r in one])), field
        assert both.paired.amplification[i].difference.estimate == pytest.approx(
            np.mean([r.paired.amplification[i].difference.estimate for r in one]))
    np.testing.assert_allclose(both.conditions[1].mean_gradient_map,
                               np.mean([r.conditions[1].mean_gradient_map for r in one], axis=0))
    assert both.evidence.claim("H3.survives_interaction").n_seeds == 2
    with pytest.raises(MechanismError, match="other conditions or images"):
        summary(cand, ctx, interact=True, direct=None, baseline=bm(base),
                replicates=[(measure(flows[1], features(5), (0.0, 0.7, 1.0), R, 4), bm(rep_base))])


# --- identities and claims ------------------------------------------------------------------

def test_identities_agree_with_closed_forms_on_a_non_interacting_flow():
    flow = identity_flow(spatial_context=False)
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    x = features(6, seed=7)
    lambdas = (0.0, 0.7, 1.0)
    result = summary(measure(flow, x, lambdas, R, batch_size=3), context(6), own=0.7)
    ids = {i.name: i for i in result.evidence.identities}
    assert ids["H3.amplification(λ=0.7)"].expected == pytest.approx(1 + 0.7 * N / (0.3 * K))
    assert ids["H3.tail_gain(λ=0.7)"].expected == pytest.approx(0.3 + 0.7 * N / K)
    assert ids["H3.tail_gain(λ=1)"].expected == pytest.approx(N / K)
    for identity in ids.values():
        assert identity.measured == pytest.approx(identity.expected, rel=1e-6, abs=1e-12)
        assert identity.agrees is True
    # the measured amplification at λ = 0.7 is the identity itself: not a claim here
    assert result.conditions[1].amplification.estimate == pytest.approx(
        amplification_identity(0.7, N / K), rel=1e-6)
    assert "H3.survives_interaction" not in [c.name for c in result.evidence.claims]
    assert amplification_identity(1.0, 49.0) is None
    assert amplification_identity(0.7, 49.0) == pytest.approx(115.333, rel=1e-4)   # SPEC §7.3
    assert tail_gain_identity(0.7, 49.0) == pytest.approx(34.6)


def test_own_paths_cut_every_context_path():
    """With the context detached, ∂NLL_p/∂x_q vanishes for q ≠ p and values are unchanged. With
    one block and zero centre taps, x_p reaches NLL_p only through its own path, so the
    own-path block equals the full Jacobian's diagonal block."""
    def jacobian(flow, x):
        return torch.autograd.functional.jacobian(lambda v: patch_nll(flow(v)).flatten(), x)[:, 0]

    flow = random_flow(8)
    x = features(1, seed=9)
    full = jacobian(flow, x).reshape(N, D, N)
    with flow.own_paths_only():
        own = jacobian(flow, x).reshape(N, D, N)
        torch.testing.assert_close(patch_nll(flow(x)), patch_nll(random_flow(8)(x)))
    off = ~torch.eye(N, dtype=torch.bool)
    assert own.permute(0, 2, 1)[off].abs().max() == 0
    assert full.permute(0, 2, 1)[off].abs().max() > 0                     # patches do interact
    assert not any(b.detach_context for b in flow.blocks)                  # restored

    one = PatchFlow(D, H, W, FlowConfig(n_blocks=1, hidden=8, pos_channels=4, spatial_context=True))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in one.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        one.blocks[0].context.weight[:, :, 1, 1] = 0.0
    full = jacobian(one.eval(), x).reshape(N, D, N)
    with one.own_paths_only():
        own = jacobian(one, x).reshape(N, D, N)
    idx = torch.arange(N)
    torch.testing.assert_close(own[idx, :, idx], full[idx, :, idx])


def test_identities_on_own_paths_of_an_interacting_flow():
    flow, x = random_flow(10), features(5, seed=11)
    lambdas = (0.0, 0.7, 1.0)
    cand = measure(flow, x, lambdas, R, batch_size=5)
    with flow.own_paths_only():
        direct = measure(flow, x, lambdas, R, batch_size=5)
    result = summary(cand, context(5, 100), own=0.7, interact=True, direct=direct)
    assert all(i.agrees for i in result.evidence.identities)
    leak = result.conditions[2].nontail_share
    assert 0 < leak.estimate < 1                                          # context leaks gradient
    survives = result.evidence.claim("H3.survives_interaction")
    assert survives.threshold == pytest.approx(0.5 * amplification_identity(0.7, N / K))
    assert survives.estimate == result.conditions[1].amplification.estimate


def test_training_claim_needs_three_seeds():
    flow, x = random_flow(12), features(4, seed=13)
    cand = measure(flow, x, (0.0, 1.0), R, batch_size=4)
    shrink = PairedStat(*(Interval(v, v - 0.01, v + 0.01, 0.95, 100, 100) for v in (0.5, 0.3, -0.2)))
    result = summary(cand, context(4, 0), own=1.0, interact=True, direct=None, tail_excess=shrink,
                     tail_excess_images=40, tail_excess_seeds=1)
    training = result.evidence.claim("H3.training")
    assert training.status is Status.NOT_RESOLVED and "S = 1 < 3" in training.reason
    assert training.n_images == 40 and training.estimate == -0.2
    three = summary(cand, context(4, 0), own=1.0, interact=True, direct=None, tail_excess=shrink,
                    tail_excess_images=40, tail_excess_seeds=3)
    assert three.evidence.claim("H3.training").status is Status.HOLDS


def test_tail_excess_over_seeds_is_the_two_stage_mean_of_paired_differences():
    from mechanism.analyzers.h3_gradient import paired_tail_excess, tail_excess
    from mechanism.stats.bootstrap import two_stage_resamples
    nll = torch.arange(2 * 12, dtype=torch.float32).reshape(2, 3, 4)
    assert tail_excess(nll, 3).tolist() == [10 - 5.5, 22 - 17.5]     # top-3 mean − mean
    rng = np.random.default_rng(1)
    pairs = [(rng.normal(1.0 + s, 1, 30), rng.normal(1.5 + s, 1, 30)) for s in range(3)]
    got = paired_tail_excess(pairs, 200, seed=4)
    assert got.difference.estimate == pytest.approx(np.mean([(c - b).mean() for c, b in pairs]))
    draws = [np.mean([(pairs[s][0][i] - pairs[s][1][i]).mean() for s, i in r])
             for r in two_stage_resamples([30] * 3, 200, 4, shared_images=True)]
    assert (got.difference.low, got.difference.high) == tuple(pytest.approx(v) for v in
                                                             np.percentile(draws, [2.5, 97.5]))
    assert got.difference.high < 0 and got.candidate.estimate < got.baseline.estimate


# --- configuration ----------------------------------------------------------------------------

def test_config_validation_and_sorting():
    assert H3Config(lambdas=(1, 0, 0.5)).lambdas == (0.0, 0.5, 1.0)
    for bad in [(0.5, 1.0), (0.0,), (0.0, 1.5), (0.0, 1.0, 1.0), (-0.1, 0.0)]:
        with pytest.raises(MechanismError):
            H3Config(lambdas=bad)
    with pytest.raises(MechanismError):
        H3Config(top_k_ratio=0.0)
    with pytest.raises(MechanismError):
        summary(measure(identity_flow(), features(2), (0.5, 1.0), R, 2), context(2))
    assert H3Config().conditions(0.7) == (0.0, 0.7, 1.0)
    assert H3Config().conditions(0.0) == (0.0, 1.0)
    assert H3Config(lambdas=(0, 1)).conditions(0.7) == (0.0, 1.0)


def test_non_finite_nll_is_an_error():
    x = features(2)
    x[1, 0, 0, 0] = float("inf")
    with pytest.raises(MechanismError, match="non-finite"):
        patch_gradients(identity_flow(), x, (0.0, 1.0), R)


# --- end to end ---------------------------------------------------------------------------------

def test_end_to_end_tiny(tiny_ckpt, tiny_baseline_ckpt, tiny_data, tiny_cache):
    det, base = load_detector(tiny_ckpt), load_detector(tiny_baseline_ckpt)
    cfg = H3Config(n_boot=30, batch_size=3)           # the checkpoint's own λ = 0.7 is added
    result = run(det, tiny_data, "brick", cfg, baseline=base, cache_dir=tiny_cache, progress=False)
    c = result.context
    assert (c.n_patches, c.k, c.grid_h, c.grid_w, c.n_images, c.split) == (16, 2, 4, 4, 8, "train")
    assert [x.tail_weight for x in result.conditions] == [0.0, 0.7, 1.0]
    assert result.theoretical_amplification == 8.0
    assert result.tail_aware.amplification is not None  # spatial context: non-tail g > 0 at λ = 1
    assert all(i.agrees for i in result.evidence.identities)
    assert result.tail_excess is not None and result.tail_excess_images > 0
    for x in result.conditions:
        assert x.ratio.low <= x.ratio.estimate <= x.ratio.high
        assert len(x.image_tail_gradient) == 8 and np.array(x.mean_gradient_map).shape == (4, 4)
    assert len(result.paired.ratio) == 3 and result.paired.amplification[2] is not None
    text = json.dumps(to_plain(result), allow_nan=False)
    assert from_plain(H3Result, json.loads(text)) == result
    md = tables.markdown(result)
    assert f"**Verdict: {result.evidence.verdict.value}** — {result.evidence.reason}" in md
    for needle in ("| Condition | Tail gradient | Non-tail gradient | Ratio |",
                   "Mean-only (λ=0)", "Tail-aware (λ=1)", "Mixed (λ=0.7) — the checkpoint's λ",
                   "N/k = 16/2 = 8", "`H3.training`", "Identity checks",
                   "N = 16", "k = 2", "4×4", "B = 30", "‖∂L/∂x"):
        assert needle in md, needle
    rows = tables.csv_rows(result)
    assert {r["measurement"] for r in rows} >= {"ratio", "gini", "amplification",
                                                "paired_amplification_difference", "verdict",
                                                "claim:H3.survives_interaction",
                                                "identity:H3.tail_gain(λ=1)", "tail_excess_difference"}
    assert math.isclose(next(r["estimate"] for r in rows if r["measurement"] == "amplification"),
                        result.conditions[1].amplification.estimate)
    # Same seed → same result.
    again = run(det, tiny_data, "brick", cfg, baseline=base, cache_dir=tiny_cache, progress=False)
    assert again == result
