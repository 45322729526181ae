"""H7's tables: the candidate's calibration and grade, its quantile comparison, the paired
baseline table, the evidence and the context."""
from __future__ import annotations

from mechanism.analyzers.h7_calibration import (CALIBRATION_STATS, PAIRED_STATS, H7Result,
                                                LatentCalibration)
from mechanism.io.text import format_p, markdown_table
from mechanism.report.tables import evidence
from mechanism.report.tables.rows import interval_text, measurement_row
from mechanism.stats.evidence import ALPHA
from mechanism.stats.calibration import TABLE_PERCENTILES

RESULT = H7Result
_PAIRED_LABELS = {"qq_correlation": "QQ correlation", "tail_error": "Tail calibration error",
                  "z_std": "z std", "scale_error": "|z std − 1|"}
_MODEL_NUMBERS = ("mean_ks_p", "mean_shapiro_p", "ks_reject_share", "shapiro_reject_share",
                  "n_values", "n_channels", "shapiro_n")


def _table_rows(c: LatentCalibration) -> list[tuple[str, str, str]]:
    d = c.n_channels
    return [
        ("z mean", c.z_mean.format("{:.4f}"), "0"),
        ("z std", c.z_std.format("{:.4f}"), "1"),
        ("|z std − 1|", c.scale_error.format("{:.4f}"), "0"),
        ("**QQ correlation**", f"**{c.qq_correlation.format('{:.4f}')}**", "1"),
        ("Mean KS p-value", format_p(c.mean_ks_p), "-"),
        ("Mean Shapiro-Wilk p-value", format_p(c.mean_shapiro_p), "-"),
        (f"Channels with KS p < {ALPHA:g}",
         f"{round(c.ks_reject_share * d)} of {d} ({c.ks_reject_share:.0%})", "-"),
        (f"Channels with Shapiro-Wilk p < {ALPHA:g}",
         f"{round(c.shapiro_reject_share * d)} of {d} ({c.shapiro_reject_share:.0%})", "-"),
        ("Tail calibration error", c.tail_error.format("{:.4f}"), "0"),
    ]


def _paired_rows(r: H7Result) -> list[tuple[str, str, str, str]]:
    return [(label, *(getattr(getattr(r.paired, key), role).format(fmt)
                      for role, fmt in (("baseline", "{:.4f}"), ("candidate", "{:.4f}"),
                                        ("difference", "{:.4g}"))))
            for key, label in _PAIRED_LABELS.items()]


def markdown(r: H7Result) -> str:
    """The calibration table and grade, the quantile comparison, the paired table (with a
    baseline), the evidence and the context."""
    c, cand = r.context, r.candidate
    quantiles = [(f"{q.percentile:g}%", f"{q.empirical:.3f}", f"{q.theoretical:.3f}",
                  f"{q.error:.3f}") for q in map(cand.quantile, TABLE_PERCENTILES)]
    parts = [markdown_table(["measurement", "value", "ideal"], _table_rows(cand)), "",
             f"Grade (a description, not a claim): {r.grade}.", "",
             "Quantile comparison:", "",
             markdown_table(["Percentile", "Empirical", "Theoretical", "Error"], quantiles), ""]
    if r.paired is not None:
        p = r.paired
        parts += [f"Paired with the baseline ({p.baseline_checkpoint}) on the same images:", "",
                  markdown_table(["measurement", f"baseline (λ = {p.baseline_tail_weight:g})",
                                  "candidate", "difference (candidate − baseline)"],
                                 _paired_rows(r)), ""]
    parts += [evidence.markdown(r.evidence), "",
              f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
              f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), "
              f"{cand.n_channels} channels, {cand.n_values:,} z values; the checkpoint's tail "
              f"k = {c.k} per image (r = {c.top_k_ratio:g}); seed {c.seed}; "
              f"{interval_text(c.n_boot)}"
              + (f"; the tables above describe this one checkpoint (train seed of its label), the "
                 f"claims pair S = {r.training.n_seeds} seeds' checkpoints (intervals over seeds × "
                 "images)" if r.training is not None and r.training.n_seeds > 1 else "")
              + f". {r.method}"]
    return "\n".join(parts)


def _model_rows(prefix: str, m: LatentCalibration) -> list[dict]:
    rows = [measurement_row(f"{prefix}{name}", getattr(m, name))
            for name in CALIBRATION_STATS + _MODEL_NUMBERS]
    for q in m.quantiles:
        rows += [measurement_row(f"{prefix}quantile_{q.percentile:g}_{part}", getattr(q, part))
                 for part in ("empirical", "theoretical", "error")]
    return rows


def csv_rows(r: H7Result) -> list[dict]:
    """The candidate's rows (and its grade), ``baseline_*`` rows and ``difference_*`` rows with a
    baseline, then the claims and the verdict."""
    rows = _model_rows("", r.candidate) + [measurement_row("grade", r.grade, "descriptive")]
    if r.baseline is not None:
        rows += _model_rows("baseline_", r.baseline)
    if r.paired is not None:
        rows += [measurement_row(f"difference_{name}", getattr(r.paired, name).difference,
                                 "candidate − baseline") for name in PAIRED_STATS]
    return rows + evidence.csv_rows(r.evidence)
