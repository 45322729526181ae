"""H4's tables: one row per top-k ratio (measured columns with a sweep; forced purities
labelled), the pre-registered performance contrasts, the evidence and the context."""
from __future__ import annotations

import math

from mechanism.analyzers.h4_dilution import MEASURED_METRICS, STUDY_RATIO, H4Result, RatioRow
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.io.text import markdown_table, percent
from mechanism.report.tables import evidence
from mechanism.report.tables.rows import checkpoint_text, interval_text

RESULT = H4Result


def saturated_purity(row: RatioRow) -> bool:
    """Purity equal to its oracle bound over the whole interval (every truly hard patch is
    selected in every resample), where that bound is not forced by k = N."""
    return not row.purity_forced and row.purity.low is not None and \
        math.isclose(row.purity.low, row.oracle_purity, rel_tol=1e-9)


def markdown(result: H4Result) -> str:
    """The study's H4 table (+ measured columns with a sweep), the performance contrasts, the
    evidence and the context."""
    header = ["Ratio", "k", "N/k (definition)", "Purity [95% CI]", "Oracle purity",
              "Effective conc. [95% CI]"]
    if result.sweep is not None:
        header += [METRIC_LABELS[m] for m in MEASURED_METRICS]
    lines = []
    for row in result.rows:
        purity = row.purity.format("{:.1%}") + (
            " (forced: oracle = chance)" if row.purity_forced else
            " (saturated: = oracle)" if saturated_purity(row) else "")
        cells = [percent(row.ratio), row.k, f"{row.amplification:.3g}×", purity,
                 f"{row.oracle_purity:.1%}",
                 row.effective_concentration.format("{:.3g}×")]
        if result.sweep is not None:
            cells += [m.format_percent() if m is not None else "not measured"
                      for m in (row.pixel_ap, row.image_auroc)]
        lines.append(cells)
    c = result.context
    measured = (f"; measured columns: sweep {result.sweep}, mean ± std over seeds; the best "
                f"ratio {percent(result.best_ratio)} (by {result.best_basis}) describes the "
                f"sweep, it is not evidence (chosen on the test set)" if result.sweep else "")
    context = (f"N = {c.n_patches} patches ({c.grid_h}×{c.grid_w} grid); truly hard: "
               f"k_ref = {result.k_ref} per image ({percent(result.config['reference_ratio'])} of N); "
               f"chance purity {result.chance_purity:.1%} (k_ref/N); selection: "
               f"{result.selection_source}; reference: {result.reference_source}{measured}; {c.n_images} "
               f"{c.split} images of {c.category}; seed {c.seed}; {interval_text(c.n_boot, c.n_seeds)}; "
               f"{checkpoint_text(c)} (its own r = {percent(c.top_k_ratio)}, k = {c.k}).")
    parts = [markdown_table(header, lines), ""]
    contrasts = [c for c in result.performance if c.effect is not None]
    if contrasts:
        parts += [f"Pre-registered performance contrasts (r = {percent(STUDY_RATIO)} against the "
                  "diluted ratio, same λ, paired seeds):", "",
                  markdown_table(["contrast", "seeds × images", "Pixel AP at the diluted r",
                                  f"Pixel AP at r = {percent(STUDY_RATIO)}", "Δ [95% CI]"],
                                 [[f"r = {percent(c.ratio)} → {percent(STUDY_RATIO)}",
                                   f"{c.effect.n_seeds} × {c.effect.n_good + c.effect.n_defective}",
                                   c.effect.metrics["pixel_ap"].baseline.format("{:.2%}"),
                                   c.effect.metrics["pixel_ap"].candidate.format("{:.2%}"),
                                   c.effect.metrics["pixel_ap"].difference.format("{:+.2%}")]
                                  for c in contrasts]), ""]
    parts += [evidence.markdown(result.evidence), "", context]
    return "\n".join(parts)


def csv_rows(result: H4Result) -> list[dict]:
    """One row per ratio: k, amplification, purity (and whether it is forced) and effective
    concentration with bounds, oracle and chance purity, and the measured metrics' mean, std and
    n (empty: not measured); then the claims, identities and the verdict."""
    out = []
    for row in result.rows:
        flat = {"ratio": row.ratio, "k": row.k, "amplification": row.amplification,
                "purity": row.purity.estimate, "purity_low": row.purity.low,
                "purity_high": row.purity.high, "purity_forced": row.purity_forced,
                "oracle_purity": row.oracle_purity,
                "chance_purity": result.chance_purity,
                "effective_concentration": row.effective_concentration.estimate,
                "effective_concentration_low": row.effective_concentration.low,
                "effective_concentration_high": row.effective_concentration.high}
        for name, m in (("pixel_ap", row.pixel_ap), ("image_auroc", row.image_auroc)):
            flat.update({f"{name}_{key}": None if m is None else getattr(m, key)
                         for key in ("mean", "std", "n")})
        out.append(flat)
    return out + [{"ratio": None, **row} for row in evidence.csv_rows(result.evidence)]
