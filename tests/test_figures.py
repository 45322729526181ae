"""Figures fig1–fig8, ``read_results`` and ``mechanism figures`` on small hand-made results.

The results are built directly from the dataclasses with plausible numbers (no model runs).
"""
import csv
import dataclasses

import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from scipy import stats

from cli.main import app
from mechanism.analyzers import h1_edge, h3_gradient, h4_dilution, h7_calibration
from mechanism.analyzers.context import AnalysisContext
from mechanism.analyzers.h1_edge import GRADIENT_METHOD, GradientDistribution, H1Result
from mechanism.analyzers.h3_gradient import GRADIENT_UNIT, H3Condition, H3Result
from mechanism.analyzers.h4_dilution import DEFAULT_RATIOS, H4Result, RatioRow, best_ratio
from mechanism.analyzers.h7_calibration import H7Paired, H7Result, LatentCalibration
from mechanism.errors import MechanismError
from mechanism.figures import fig1_gradient_concentration as fig1
from mechanism.figures import fig2_tail_location as fig2
from mechanism.figures import fig4_latent_qq as fig4
from mechanism.figures import fig5_channel_normality as fig5
from mechanism.figures import fig7_hypothesis_summary as fig7
from mechanism.figures import fig8_topk_dilution as fig8
from mechanism.figures.render import FigureInputs, render_figures
from mechanism.figures.style import DPI, new_figure, theme
from mechanism.report.files import read_results, write_result
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.stats.calibration import QQ_PERCENTILES, TAIL_PERCENTILES, QuantileRow
from mechanism.stats.edge_distance import (KS_METHOD, edge_distance_grid, edge_distance_ks,
                                           uniform_edge_distance_mean, uniform_edge_distance_pmf)
from mechanism.stats.summary import MetricSummary
from mechanism.sweep.results import COLUMNS, SweepRun

N_BOOT = 200
SIZES = {   # file stem → (width, height) of the PNG in pixels at DPI
    "fig1_gradient_concentration": (9.0, 4.0), "fig2_tail_location": (9.5, 4.3),
    "fig3_image_gradient": (11.0, 4.0), "fig4_latent_qq": (9.0, 4.2),
    "fig5_channel_normality": (9.0, 4.2), "fig6_tail_weight_ablation": (9.0, 4.0),
    "fig7_hypothesis_summary": (10.0, 5.2), "fig8_topk_dilution": (9.0, 7.4),
}


# ---------------------------------------------------------------------------------------------
# Hand-made results

def iv(estimate: float, half: float | None = None) -> Interval:
    """An interval of ± ``half`` (none without ``half``)."""
    if half is None:
        return Interval(estimate, None, None, 0.95, 0, 0, "no bootstrap requested")
    return Interval(estimate, estimate - half, estimate + half, 0.95, N_BOOT, N_BOOT)


def context(grid: int, r: float, split: str = "train", n: int = 20) -> AnalysisContext:
    n_patches = grid * grid
    return AnalysisContext("λ=1 r=0.1 topk on brick (train seed 0, data 0123456789ab)", "brick",
                           split, n, grid, grid, n_patches, max(1, round(n_patches * r)), r, 0, N_BOOT)


def make_h1(grid: int = 4, r: float = 0.1) -> H1Result:
    ctx, rng = context(grid, r), np.random.default_rng(0)
    distance = edge_distance_grid(grid, grid)
    weights = np.exp(-0.4 * distance).ravel()
    counts = rng.multinomial(ctx.n_images * ctx.k, weights / weights.sum()).reshape(grid, grid)
    tail_d = np.repeat(distance.ravel(), counts.ravel())
    ks = edge_distance_ks(tail_d, grid, grid)
    pmf = uniform_edge_distance_pmf(grid, grid)
    tail_g = rng.gamma(2.0, 0.052, ctx.n_images * ctx.k)
    nontail_g = rng.gamma(2.0, 0.050, ctx.n_images * (ctx.n_patches - ctx.k))
    edges = np.histogram_bin_edges(np.concatenate([tail_g, nontail_g]), 30)
    levels = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
    dist = GradientDistribution(tuple(edges.tolist()), tuple(np.histogram(tail_g, edges)[0].tolist()),
                                tuple(np.histogram(nontail_g, edges)[0].tolist()), levels,
                                tuple(np.quantile(tail_g, levels).tolist()),
                                tuple(np.quantile(nontail_g, levels).tolist()))
    ratio = tail_g.mean() / nontail_g.mean()
    return H1Result(
        ctx, iv(float(tail_d.mean()), 0.08), float(tail_d.std()), uniform_edge_distance_mean(grid, grid),
        ks.statistic, ks.p_value, KS_METHOD, GRADIENT_METHOD, float(tail_g.mean()),
        float(nontail_g.mean()), iv(float(ratio), 0.03), 0.052, iv(float(ratio), 0.04), 0.06,
        iv(0.02, 0.03), "",
        tuple(tuple(int(c) for c in row) for row in counts),
        tuple(tuple(float(c) / (ctx.n_images * ctx.k) for c in row) for row in counts),
        tuple(np.bincount(tail_d, minlength=len(pmf)).tolist()), tuple(pmf.tolist()), dist, None,
        None, h1_edge.evidence(iv(float(tail_d.mean()), 0.08), uniform_edge_distance_mean(grid, grid),
                               ks.p_value, iv(float(ratio), 0.04), 0.06, iv(float(ratio), 0.03),
                               ctx.n_images))


def make_h3(grid: int = 4, r: float = 0.1, n_boot: bool = True) -> H3Result:
    ctx = context(grid, r)
    half = (lambda x: 0.05 * x) if n_boot else (lambda x: None)
    flat = tuple(tuple(0.01 for _ in range(grid)) for _ in range(grid))

    base_ratio = 0.0118 / 0.0100

    def condition(lam, tail, nontail, gini):
        amp = None if lam == 0 else iv(tail / nontail / base_ratio, half(tail / nontail / base_ratio))
        return H3Condition(lam, iv(tail, half(tail)), iv(nontail, half(nontail)),
                           iv(tail / nontail, half(tail / nontail)), iv(gini, half(gini)), "", "",
                           amp, "", None if lam == 0 else iv(tail / 0.0118, half(tail / 0.0118)),
                           iv(0.3, half(0.3)), flat, (tail,) * ctx.n_images,
                           (nontail,) * ctx.n_images)

    conditions = (condition(0.0, 0.0118, 0.0100, 0.091), condition(0.7, 0.2, 0.007, 0.4),
                  condition(1.0, 0.2999, 0.0060, 0.49))
    n_over_k = ctx.n_patches / ctx.k
    ev = h3_gradient.evidence(conditions, 0.7, n_over_k, True, None, ctx.n_images, 0, 0, ())
    return H3Result(ctx, GRADIENT_UNIT, conditions, 0.7, n_over_k, None, 0, 0, None, ev)


def make_h4(grid: int = 4, measured: bool = True) -> H4Result:
    ctx = context(grid, 0.1)
    n, k_ref = ctx.n_patches, max(1, round(ctx.n_patches * 0.02))
    rows = []
    for i, r in enumerate(DEFAULT_RATIOS):
        k = max(1, round(n * r))
        purity = min(1.0, k_ref / k) * (0.75 - 0.03 * i) + 0.02
        ap = MetricSummary(0.56 - 0.25 * r - 0.02 * abs(np.log(r / 0.03)), 0.012, 3) if measured else None
        auroc = MetricSummary(0.97 - 0.05 * r, 0.004, 3) if measured else None
        rows.append(RatioRow(r, k, n / k, iv(purity, 0.04), min(1.0, k_ref / k),
                             iv(purity * n / k, 0.04 * n / k), ap, auroc, k == n))
    effective = [row.effective_concentration.estimate for row in rows]
    aps = [row.pixel_ap.mean for row in rows] if measured else None
    best, basis = best_ratio(DEFAULT_RATIOS, effective, aps)
    sweep = "runs/sweep-r" if measured else None
    return H4Result(ctx, {"reference_ratio": 0.02, "n_views": 4}, k_ref, k_ref / n, 4,
                    "the checkpoint on one augmented view", "the NLL averaged over 4 views",
                    sweep, tuple(rows), best, basis, (),
                    h4_dilution.evidence(rows, k_ref / n, (), ctx.n_images, sweep))


def calibration(channels: int, df: float, seed: int) -> LatentCalibration:
    rng = np.random.default_rng(seed)
    empirical = stats.t.ppf(QQ_PERCENTILES / 100, df) * 0.97
    theory = stats.norm.ppf(QQ_PERCENTILES / 100)
    rows = tuple(QuantileRow(float(p), float(empirical[p - 1]), float(theory[p - 1]),
                             float(abs(empirical[p - 1] - theory[p - 1]))) for p in TAIL_PERCENTILES)
    tail_error = float(np.mean([q.error for q in rows]))
    ks_p = rng.uniform(0, 1, channels) ** 4
    ks_p[0] = 0.0                                  # a p-value that underflowed
    return LatentCalibration(
        channels * 20 * 16, channels, iv(0.01, 0.005), iv(0.98, 0.01), iv(0.02, 0.01),
        iv(float(np.corrcoef(empirical, theory)[0, 1]), 0.0008), iv(tail_error, 0.02),
        tuple(empirical.tolist()), rows, float(ks_p.mean()), 0.21,
        float((ks_p < 0.05).mean()), 0.3, 320, tuple(ks_p.tolist()),
        tuple((rng.uniform(0, 1, channels) ** 3).tolist()), tuple(rng.normal(0, 0.05, channels).tolist()),
        tuple(rng.normal(0.98, 0.04, channels).tolist()))


def make_h7(grid: int = 4, baseline: bool = True, channels: int = 16) -> H7Result:
    cand = calibration(channels, 8, 1)
    base = calibration(channels, 5, 2) if baseline else None
    paired = None
    if baseline:
        def pair(name):
            b, c = getattr(base, name), getattr(cand, name)
            return PairedStat(b, c, iv(c.estimate - b.estimate, 0.01))
        paired = H7Paired("λ=0 r=0.1 topk on brick (train seed 0, data 0123456789ab)", 0.0,
                          pair("qq_correlation"), pair("tail_error"), pair("z_std"),
                          pair("scale_error"))
    ctx = context(grid, 0.1, "test")
    training = None if paired is None else h7_calibration.SeedDifferences(
        1, ctx.n_images, paired.tail_error.difference, paired.scale_error.difference)
    return H7Result(ctx, {"split": "all"}, tuple(range(1, 100)),
                    tuple(stats.norm.ppf(QQ_PERCENTILES / 100).tolist()), cand, base, paired,
                    training, "hand-made", h7_calibration.grade(cand.qq_correlation.estimate,
                                                      cand.tail_error.estimate, cand.z_std.estimate),
                    h7_calibration.evidence(training, ctx.n_images))


def make_runs(category: str = "brick") -> list[SweepRun]:
    runs = []
    for lam in (0.0, 0.3, 0.7, 1.0):
        for seed in range(3):
            ap = 0.50 + 0.05 * lam - 0.06 * lam ** 2 + 0.01 * seed
            runs.append(SweepRun("tail_weight", f"{lam:g}", lam, 0.02, "topk", seed, category,
                                 0.95 + 0.01 * lam, 0.96, ap, 0.80, 10.0))
    return runs


def write_sweep(folder, runs: list[SweepRun]):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for run in runs:
            writer.writerow({c: getattr(run, c) for c in COLUMNS})
    return folder


# ---------------------------------------------------------------------------------------------
# Checks

def check_png(path, figsize):
    """The PNG has the figure's pixel size at DPI and is not blank."""
    image = imread(path)
    assert image.shape[:2] == (round(figsize[1] * DPI), round(figsize[0] * DPI))
    assert image[..., :3].std() > 0.05


def check_written(outcome, out, stems):
    assert sorted(p.name for p in outcome.written) == sorted(f"{s}.{e}" for s in stems for e in ("png", "pdf"))
    for stem in stems:
        check_png(out / f"{stem}.png", SIZES[stem])
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    assert not list(out.glob(".*tmp*"))          # no temporary file left behind


def test_every_figure_renders(tmp_path):
    inputs = FigureInputs(make_h1(), make_h3(), make_h4(), make_h7(), make_runs())
    outcome = render_figures(inputs, tmp_path)
    assert outcome.skipped == () and outcome.removed == ()
    check_written(outcome, tmp_path, SIZES)


def test_fig6_and_fig8_without_sweep_data(tmp_path):
    outcome = render_figures(FigureInputs(sweep_runs=make_runs()), tmp_path)
    check_written(outcome, tmp_path, ["fig6_tail_weight_ablation"])
    assert "fig7: no hypothesis results" in outcome.skipped
    outcome = render_figures(FigureInputs(h4=make_h4(measured=False)), tmp_path)
    check_png(tmp_path / "fig8_topk_dilution.png", (9.0, 4.2))      # two panels, no Pixel AP
    assert "fig6: no sweep runs given" in outcome.skipped
    assert [s for s in outcome.skipped if s.startswith("fig1:")] == ["fig1: no H3 result"]
    assert outcome.removed == (tmp_path / "fig6_tail_weight_ablation.png",
                               tmp_path / "fig6_tail_weight_ablation.pdf")
    assert not (tmp_path / "fig6_tail_weight_ablation.png").exists()


def drawn(module, *args):
    """Draw a figure module into fresh axes without saving; its axes and FigureText."""
    with theme():
        layout = module.layout(*args[:1]) if hasattr(module, "layout") else module.LAYOUT
        _, axes = new_figure(layout)
        return axes, module.draw(*args, axes)


def draw_text(module, *args):
    """Draw a figure module into fresh axes without saving; its FigureText."""
    return drawn(module, *args)[1]


def test_variants_draw_large_grid_no_intervals_no_baseline():
    assert "196 (14×14 grid" in draw_text(fig2, make_h1(grid=14, r=0.02)).caption
    assert "No confidence intervals" in draw_text(fig1, make_h3(n_boot=False)).caption
    assert "baseline" not in draw_text(fig5, make_h7(baseline=False)).caption
    qq = draw_text(fig4, make_h7(baseline=False)).caption      # only the claims ask for one
    assert qq.count("needs a λ = 0 baseline") == 2 and "H7.calibration not resolved" in qq
    assert "Pixel AP" not in draw_text(fig8, make_h4(measured=False)).title


@pytest.mark.parametrize("runs,category,reason", [
    ([dataclasses.replace(r, param="tail_top_k_ratio") for r in make_runs()], None,
     "no tail_weight sweep"),
    (make_runs("brick") + make_runs("grass"), None, "covers categories brick, grass: name one"),
    (make_runs("grass"), "brick", "no runs on category brick"),
])
def test_fig6_skip_reasons(tmp_path, runs, category, reason):
    outcome = render_figures(FigureInputs(sweep_runs=runs, category=category), tmp_path)
    (line,) = [s for s in outcome.skipped if s.startswith("fig6:")]
    assert reason in line


def test_fig7_draws_any_subset_and_refuses_none():
    with theme():
        fig, axes = new_figure(fig7.LAYOUT)
        text = fig7.draw({"H7": make_h7()}, axes)
        drawn = " ".join(t.get_text() for t in axes[0].texts)
        assert text.title.startswith("Mechanism hypotheses H7:")
        assert "H7.calibration" in drawn and "study: PARTIAL" in drawn and "H1" not in drawn
        with pytest.raises(MechanismError, match="at least one"):
            fig7.draw({}, axes)


def test_fig7_puts_the_headline_and_the_control_on_top():
    """The headline and the random-k control are drawn above the verdicts, in points."""
    import numpy as np
    from test_observed_effect import _evaluation
    from mechanism.eval.observed_effect import observed_effect
    rng = np.random.default_rng(3)
    base, tail = _evaluation(rng), _evaluation(rng, maps_shift=0.5)
    effect = observed_effect([base], [tail], "λ = 0", "λ = 0.7", n_boot=50, seed=0)
    with theme():
        fig, axes = new_figure(fig7.LAYOUT)
        text = fig7.draw({"H7": make_h7()}, axes, observed=effect, control=effect)
        drawn = " ".join(t.get_text() for t in axes[0].texts)
    d = effect.metrics["pixel_ap"].difference
    assert f"Headline, tail-aware − λ = 0 (S = 1 × {effect.n_good + effect.n_defective} test images)" in drawn
    assert f"Δ Pixel AP {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}] pts" in drawn
    assert "Random-k control, top-k − random-k" in drawn and "Top: the headline" in text.caption


def test_theme_does_not_leak():
    before = dict(matplotlib.rcParams)
    with theme():
        assert matplotlib.rcParams["axes.grid"]
    assert dict(matplotlib.rcParams) == before


# ---------------------------------------------------------------------------------------------
# read_results and the CLI

def write_tables(folder, results: dict) -> None:
    for name, result in results.items():
        write_result(result, folder / "tables", name)


def test_read_results_round_trip(tmp_path):
    results = {"H1": make_h1(), "H3": make_h3(), "H4": make_h4(), "H7": make_h7()}
    write_tables(tmp_path, results)
    assert read_results(tmp_path) == results
    (tmp_path / "tables" / "H1.json").unlink()
    assert read_results(tmp_path).keys() == {"H3", "H4", "H7"}


@pytest.mark.parametrize("text,match", [
    ("{not json", "H3.json is not valid JSON"),
    ('{"foo": 1}', "H3.json is not an H3 result written by mechanism analyze \\(H3: missing field 'context'\\)"),
    ('[1, 2]', "H3.json is not an H3 result"),
])
def test_read_results_rejects_corrupt_or_foreign_json(tmp_path, text, match):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "H3.json").write_text(text)
    with pytest.raises(MechanismError, match=match):
        read_results(tmp_path)


def test_read_results_rejects_another_hypothesis_and_an_empty_folder(tmp_path):
    write_tables(tmp_path, {"H7": make_h4()})
    with pytest.raises(MechanismError, match="H7.json is not an H7 result"):
        read_results(tmp_path)
    with pytest.raises(MechanismError, match="no result tables"):
        read_results(tmp_path / "empty")


def test_cli_rerenders_from_saved_tables(tmp_path):
    results = tmp_path / "mechanism"
    write_tables(results, {"H3": make_h3()})
    write_sweep(results / "sweeps", make_runs()[:6])                # λ = 0, 0.3
    extra = write_sweep(tmp_path / "more", make_runs()[6:])         # λ = 0.7, 1
    out = CliRunner().invoke(app, ["figures", "--results", str(results), "--sweep", str(extra),
                                   "--sweep", str(extra)])          # a folder given twice counts once
    assert out.exit_code == 0, (out.output, out.exception)
    figures = results / "figures"
    stems = ["fig1_gradient_concentration", "fig6_tail_weight_ablation", "fig7_hypothesis_summary"]
    assert out.output.splitlines() == [f"wrote {figures / s}.{e}" for s in stems for e in ("png", "pdf")] + [
        "skipped fig2: no H1 result", "skipped fig3: no H1 result", "skipped fig4: no H7 result",
        "skipped fig5: no H7 result", "skipped fig8: no H4 result"]
    check_png(figures / "fig6_tail_weight_ablation.png", SIZES["fig6_tail_weight_ablation"])


def test_cli_without_tables_is_one_line_exit_2(tmp_path):
    out = CliRunner().invoke(app, ["figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")])
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: no result tables")
    assert not (tmp_path / "f").exists()
