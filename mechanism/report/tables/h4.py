"""H4's tables: one row per top-k ratio (measured columns with a sweep), verdict and context."""
from __future__ import annotations

from mechanism.analyzers.h4_dilution import MEASURED_METRICS, H4Result
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.io.text import markdown_table, percent

RESULT = H4Result


def markdown(result: H4Result) -> str:
    """The study's H4 table (+ measured columns with a sweep), the verdict and the context."""
    header = ["Ratio", "k", "Amplification", "Purity [95% CI]", "Oracle purity",
              "Effective conc. [95% CI]"]
    if result.sweep is not None:
        header += [METRIC_LABELS[m] for m in MEASURED_METRICS]
    lines = []
    for row in result.rows:
        cells = [percent(row.ratio), row.k, f"{row.amplification:.3g}×",
                 row.purity.format("{:.1%}"), f"{row.oracle_purity:.1%}",
                 row.effective_concentration.format("{:.3g}×")]
        if result.sweep is not None:
            cells += [m.format_percent() if m is not None else "not measured"
                      for m in (row.pixel_ap, row.image_auroc)]
        lines.append(cells)
    c = result.context
    measured = (f"; measured columns: sweep {result.sweep}, mean ± std over seeds"
                if result.sweep else "")
    context = (f"N = {c.n_patches} patches ({c.grid_h}×{c.grid_w} grid); truly hard: "
               f"k_ref = {result.k_ref} per image ({percent(result.config['reference_ratio'])} of N); "
               f"chance purity {result.chance_purity:.1%} (k_ref/N); selection: "
               f"{result.selection_source}; reference: {result.reference_source}; best ratio "
               f"{percent(result.best_ratio)} by {result.best_basis}{measured}; {c.n_images} "
               f"{c.split} images of {c.category}; seed {c.seed}; bootstrap B = {c.n_boot}; "
               f"checkpoint {c.checkpoint} (its own r = {percent(c.top_k_ratio)}, k = {c.k}).")
    return "\n".join([markdown_table(header, lines), "",
                      f"**Verdict: {result.verdict.value}** — {result.verdict_reason}", "", context])


def csv_rows(result: H4Result) -> list[dict]:
    """One row per ratio: k, amplification, purity and effective concentration with bounds,
    oracle and chance purity, and the measured metrics' mean, std and n (empty: not measured)."""
    out = []
    for row in result.rows:
        flat = {"ratio": row.ratio, "k": row.k, "amplification": row.amplification,
                "purity": row.purity.estimate, "purity_low": row.purity.low,
                "purity_high": row.purity.high, "oracle_purity": row.oracle_purity,
                "chance_purity": result.chance_purity,
                "effective_concentration": row.effective_concentration.estimate,
                "effective_concentration_low": row.effective_concentration.low,
                "effective_concentration_high": row.effective_concentration.high}
        for name, m in (("pixel_ap", row.pixel_ap), ("image_auroc", row.image_auroc)):
            flat.update({f"{name}_{key}": None if m is None else getattr(m, key)
                         for key in ("mean", "std", "n")})
        out.append(flat)
    return out
