"""H1's tables: edge distances and image gradients of the tail, the flip control, the evidence,
the paired baseline table and the context."""
from __future__ import annotations

from mechanism.analyzers.h1_edge import FlipControl, H1Result
from mechanism.analyzers.h1_edge.flip_control import UNUSUAL_LEVEL
from mechanism.io.text import format_p, markdown_table
from mechanism.report.tables import evidence
from mechanism.report.tables.rows import checkpoint_text, interval_text, measurement_row
from mechanism.stats.bootstrap import Interval
from mechanism.stats.edge_distance import SIDES

RESULT = H1Result


def _table_rows(r: H1Result) -> list[tuple[str, str]]:
    mean = r.tail_distance_mean
    ci = "" if mean.low is None else f" (mean's 95% CI [{mean.low:.3f}, {mean.high:.3f}])"
    ratio = "—" if r.gradient_ratio is None else f"**{r.gradient_ratio.format('{:.3f}×')}**"
    return [
        ("Edge distance (tail), cells", f"{mean.estimate:.3f} ± {r.tail_distance_std:.3f}{ci}"),
        ("Edge distance (uniform), cells", f"{r.uniform_distance_mean:.3f}"),
        ("KS p-value (one-sample, exact discrete law)",
         f"{format_p(r.ks_p)} (D = {r.ks_statistic:.3f})"),
        ("Image gradient (tail)", f"{r.gradient_tail_mean:.4f}"),
        ("Image gradient (non-tail)", f"{r.gradient_nontail_mean:.4f}"),
        ("Gradient ratio (tail / non-tail), all cells", ratio),
        ("Mann-Whitney p-value, all cells", "—" if r.mw_p is None else format_p(r.mw_p)),
        ("**Gradient ratio, interior cells** (edge distance ≥ 1)",
         "—" if r.interior_gradient_ratio is None else
         f"**{r.interior_gradient_ratio.format('{:.3f}×')}**"),
        ("Mann-Whitney p-value, interior cells",
         "—" if r.interior_mw_p is None else format_p(r.interior_mw_p)),
        ("Cliff's δ (tail vs non-tail gradient)", r.cliffs_delta.format("{:.3f}")),
    ]


def _paired_rows(r: H1Result) -> list[tuple[str, str, str, str]]:
    p = r.paired
    rows = [("Edge distance (tail) mean, cells", *(i.format("{:.3f}") for i in (
        p.tail_distance_mean.baseline, p.tail_distance_mean.candidate,
        p.tail_distance_mean.difference)))]
    if p.gradient_ratio is None:
        rows.append(("Gradient ratio", "—", "—", p.note))
    else:
        rows.append(("Gradient ratio", *(i.format("{:.3f}") for i in (
            p.gradient_ratio.baseline, p.gradient_ratio.candidate, p.gradient_ratio.difference))))
    return rows


def _pct(i: Interval | None) -> str:
    if i is None:
        return "—"
    if i.low is None or i.high is None:
        return f"{100 * i.estimate:.1f}%"
    return f"{100 * i.estimate:.1f}% [{100 * i.low:.1f}, {100 * i.high:.1f}]"


def flip_markdown(f: FlipControl) -> str:
    """The side-share table, the grid-anchoring index per flip and the cell-level shares."""
    flips = {o.flip: o for o in f.flips}
    sides = markdown_table(
        ["side of the grid", "uniform", "original inputs", *(f"{o.flip} flipped" for o in f.flips)],
        [[s, f"{100 * f.uniform_sides[s]:.1f}%", _pct(f.original_sides[s]),
          *(_pct(o.sides[s]) for o in f.flips)] for s in SIDES])
    anchoring = markdown_table(
        ["flip", "asymmetry", "original", "flipped", "grid-anchoring index G",
         "flipped images unusual to the model", "reading"],
        [[o.flip, o.asymmetry, _pct(o.asymmetry_original), _pct(o.asymmetry_flipped),
          "—" if o.anchoring is None else o.anchoring.format("{:+.2f}"), _pct(o.flipped_unusual),
          o.reading] for o in flips.values()])
    def chance(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.1f}%"

    cells = markdown_table(
        ["flip", "region", "tail cells", "grid-anchored share", "chance", "content-following share",
         "chance"],
        [[o.flip, c.region, c.n_tail_cells, _pct(c.grid_anchored), chance(c.chance_grid_anchored),
          _pct(c.content_following), chance(c.chance_content_following)]
         for o in flips.values() for c in o.cells])
    return "\n".join([
        "Flip control — is an edge preference the image or the network? (printed beside the "
        "verdict, not counted in it). Tail share per side, grid coordinates (rows and columns "
        "include their corners):", "", sides, "",
        "G = asymmetry(flipped) / asymmetry(original): +1 when the asymmetry stays on the grid "
        "(padding, receptive field, position condition), −1 when it follows the image content. "
        "G tests only the asymmetric part: a flip maps the border onto itself, so an excess "
        "shared by all four sides is not tested by it. The control assumes a flipped normal image "
        "is still normal to the model: 'unusual' is the share of flipped images whose mean patch "
        f"NLL exceeds the originals' {100 * (1 - UNUSUAL_LEVEL):g}th percentile "
        f"({100 * UNUSUAL_LEVEL:g}% if they stay normal); when most are, the flip is itself an "
        "anomaly and G is confounded:",
        "", anchoring, "",
        "Cell level (secondary). Chance: the same share against *another* image's flipped tail "
        "(tails share the edge preference, so chance is far above the uniform "
        f"k/N = {100 * f.chance_share:.1f}%):",
        "", cells, "", f"Method: {f.method}."])


def control_sentence(f: FlipControl) -> str:
    """The flip control in one sentence, to print beside H1's verdict: what each flip says, and
    what they say together about H1.location's edge preference."""
    parts = [f"{o.flip} {o.asymmetry} G = {o.anchoring.format('{:+.2f}')}: {o.reading}"
             if o.anchoring is not None else f"{o.flip}: {o.reading}" for o in f.flips]
    readings = [o.reading for o in f.flips if o.anchoring is not None or o.reading.startswith("confounded")]
    if any(r.startswith("confounded") for r in readings):
        meaning = " — the control does not decide here"
    elif readings and all(r.startswith("the asymmetry stays on the grid") for r in readings):
        meaning = (" — so the edge preference's asymmetric part is the network's (padding, "
                   "receptive field, position condition), not the image's; its symmetric part "
                   "(the whole border) is not tested by a flip")
    elif readings and all(r.startswith(("the asymmetry stays on the grid", "partly on the grid"))
                          for r in readings):
        meaning = " — so the edge preference's asymmetric part is at least partly the network's"
    elif readings and all(r.startswith("the asymmetry follows the image content") for r in readings):
        meaning = " — so the edge preference's asymmetric part follows the image content"
    else:
        meaning = ""
    return f"Flip control (not a claim): {'; '.join(parts)}{meaning}."


def markdown(r: H1Result) -> str:
    """The measurement table, the flip control, the evidence, the paired table (with a
    baseline) and the context."""
    c = r.context
    parts = [markdown_table(["measurement", "value"], _table_rows(r)), ""]
    if r.flip_control is not None:
        parts += [flip_markdown(r.flip_control), ""]
    parts += [evidence.markdown(r.evidence), ""]
    if r.paired is not None:
        lam = f"λ = {r.paired.baseline_tail_weight:g}"
        parts += [f"Paired with the baseline ({r.paired.baseline_checkpoint}) on the same "
                  "images with the same k:", "",
                  markdown_table(["measurement", f"baseline ({lam})", "candidate",
                                  "difference (candidate − baseline)"], _paired_rows(r)), ""]
    notes = f" {r.gradient_note}" if r.gradient_note else ""
    parts.append(
        f"Context: {checkpoint_text(c)}; category {c.category}, split {c.split}, "
        f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), tail k = {c.k} "
        f"per image (r = {c.top_k_ratio:g}); seed {c.seed}; {interval_text(c.n_boot, c.n_seeds)}"
        f"{'; maps and counts pool the seeds; p-values are the largest over seeds' if c.n_seeds > 1 else ''}. "
        f"KS: {r.ks_method}. Gradient: {r.gradient_method}.{notes}")
    return "\n".join(parts)


def csv_rows(r: H1Result) -> list[dict]:
    """One row per measurement; with a baseline, ``paired_<name>_<role>`` rows; then the
    claims, identities and the verdict."""
    rows = [measurement_row("edge_distance_tail_mean", r.tail_distance_mean, "cells"),
            measurement_row("edge_distance_tail_std", r.tail_distance_std, "cells, population std"),
            measurement_row("edge_distance_uniform_mean", r.uniform_distance_mean, "cells, exact"),
            measurement_row("ks_statistic", r.ks_statistic, "D = max |F_n − F|"),
            measurement_row("ks_p", r.ks_p, r.ks_method),
            measurement_row("gradient_tail_mean", r.gradient_tail_mean, r.gradient_method),
            measurement_row("gradient_nontail_mean", r.gradient_nontail_mean,
                            "as gradient_tail_mean"),
            measurement_row("gradient_ratio", r.gradient_ratio, r.gradient_note),
            measurement_row("mann_whitney_p", r.mw_p, r.gradient_note),
            measurement_row("interior_gradient_ratio", r.interior_gradient_ratio,
                            "tail / non-tail on cells with edge distance ≥ 1"),
            measurement_row("interior_mann_whitney_p", r.interior_mw_p),
            measurement_row("cliffs_delta", r.cliffs_delta)]
    if r.flip_control is not None:
        f = r.flip_control
        rows += [measurement_row(f"tail_share_{s}_original", f.original_sides[s],
                                 f"uniform {f.uniform_sides[s]:.6g}") for s in SIDES]
        for o in f.flips:
            rows += [measurement_row(f"tail_share_{s}_{o.flip}_flipped", o.sides[s]) for s in SIDES]
            rows += [measurement_row(f"asymmetry_{o.flip}_original", o.asymmetry_original, o.asymmetry),
                     measurement_row(f"asymmetry_{o.flip}_flipped", o.asymmetry_flipped, o.asymmetry),
                     measurement_row(f"grid_anchoring_{o.flip}", o.anchoring,
                                     o.anchoring_note or o.reading),
                     measurement_row(f"flipped_unusual_{o.flip}", o.flipped_unusual,
                                     f"share of flipped images above the originals' "
                                     f"{100 * (1 - UNUSUAL_LEVEL):g}th percentile of mean NLL")]
            for cell in o.cells:
                rows += [measurement_row(f"{kind}_share_{o.flip}_{cell.region}", getattr(cell, attr),
                                         f"{cell.n_tail_cells} tail cells")
                         for kind, attr in (("grid_anchored", "grid_anchored"),
                                            ("content_following", "content_following"))]
    if r.paired is not None:
        p = r.paired
        for name, paired in (("edge_distance_tail_mean", p.tail_distance_mean),
                             ("gradient_ratio", p.gradient_ratio)):
            if paired is None:
                rows.append(measurement_row(f"paired_{name}", None, p.note))
                continue
            rows += [measurement_row(f"paired_{name}_{role}", getattr(paired, role))
                     for role in ("baseline", "candidate", "difference")]
    return rows + evidence.csv_rows(r.evidence)
