"""REPORT.md: the study's structure (question, hypotheses, summary, optimum, conclusion) with our
measurements, claims and verdicts (SPEC §7), the facts a reader needs to judge them, and where
and why we differ from the study (§7.4)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mechanism.analyzers.context import checkpoint_label
from mechanism.data.images import shape_text
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.eval.observed_effect import OBSERVED_METRICS, ObservedEffect
from mechanism.io.text import markdown_table
from mechanism.report import tables
from mechanism.report.headline import claim_text, headline
from mechanism.report.study import STUDY_CLAIMS, STUDY_OBSERVED, STUDY_OPTIMUM
from mechanism.report.sweeps import PARAM_LABELS, ablation
from mechanism.report.tables import observed_effect as effect_table
from mechanism.report.tables.h1 import control_sentence
from mechanism.stats.evidence import MIN_SEEDS, Claim, Evidence, Status
from mechanism.sweep.results import SweepRun
from mechanism.train.checkpoint import Checkpoint
from mechanism.train.loss import tail_k

HYPOTHESIS_ORDER = ("H1", "H3", "H7", "H4")          # the study's order of sections
FIGURES_OF = {"H1": ("fig2", "fig3"), "H3": ("fig1",), "H7": ("fig4", "fig5"), "H4": ("fig8",)}
METHODS = {
    "H1": ("Per training image, the k highest-NLL patches form the tail. Their edge distance "
           "min(i, j, H−1−i, W−1−j) is compared with the exact uniform law of the grid (KS test), "
           "and the Sobel gradient of the image under each patch is compared between the tail and "
           "all other patches (Mann-Whitney U, Cliff's δ)."),
    "H3": ("On the same training batches and parameters, the loss at λ = 0, the checkpoint's λ "
           "and 1 is back-propagated to the flow's input features; the per-patch gradient norm "
           "‖∂L/∂x‖ is averaged over tail and non-tail patches. Amplification(λ) = ratio(λ) / "
           "ratio(λ = 0); its value for non-interacting patches is an identity of the loss, "
           "checked on the gradient each patch gets through its own path. With a baseline, the "
           "NLL tail of normal test patches is compared (H3.training)."),
    "H7": ("Every latent value z of the good test images is compared with N(0, 1): moments, QQ "
           "correlation over percentiles 1–99, the tail calibration error at percentiles 1, 2, 5, "
           "95, 98, 99, and per-channel KS and Shapiro-Wilk tests; with a baseline, the paired "
           "change of the tail error and of |z std − 1| (the claims)."),
    "H4": ("For each top-k ratio r: amplification N/k; purity = share of the k patches the loss "
           "would select (NLL on an augmented view) that are truly hard (top 2% of the NLL averaged "
           "over several views); effective concentration = purity × amplification; and, from the "
           "r sweep, the measured Pixel AP of checkpoints trained at each r, with the "
           "pre-registered contrasts r = 2% vs 10% and vs 100%."),
}
TITLES = {"H1": "H1 — image boundaries", "H3": "H3 — gradient concentration",
          "H7": "H7 — latent calibration", "H4": "H4 — top-k ratio dilution"}


@dataclass(frozen=True)
class ReportInputs:
    """Everything REPORT.md shows; figure paths are relative to the report's folder."""
    category: str
    checkpoint: Checkpoint                           # the analysed checkpoint
    results: dict[str, Any]                          # "H1" … "H7" → analyzer result
    observed: ObservedEffect | None                  # the headline
    control: ObservedEffect | None                   # the random-k control
    sweep_runs: list[SweepRun] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)          # "fig1" → "figures/fig1_….png"
    skipped_figures: dict[str, str] = field(default_factory=dict)  # "fig6" → why not drawn
    manifest: dict = field(default_factory=dict)


def _figure_lines(names: tuple[str, ...], inputs: ReportInputs) -> list[str]:
    lines = []
    for name in names:
        if name in inputs.figures:
            lines.append(f"![{name}]({inputs.figures[name]})")
        elif name in inputs.skipped_figures:
            lines.append(f"*{name} not drawn: {inputs.skipped_figures[name]}.*")
    return lines


def _facts(inputs: ReportInputs) -> list[str]:
    """What a reader needs to judge the numbers: model, data, seeds, images, scoring."""
    c, r = inputs.checkpoint, inputs.results
    bb = c.backbone["config"]
    h, w, d = c.grid
    rows = [["data", f"{c.data.root}, category {inputs.category} ({c.data.n_train} training images)"],
            ["backbone", f"{bb['name']} (frozen, ImageNet weights), stages {bb['layers']}, "
                         f"{bb['local_avg']}×{bb['local_avg']} local averaging, input {shape_text(bb['input_size'])} px (h×w)"],
            ["features", f"D = {d} channels on a {h}×{w} grid (N = {h * w} patches)"],
            ["training", f"{c.train.epochs} epochs, batch {c.train.batch_size}, lr {c.train.lr:g}; "
                         f"tail-aware λ = {c.loss.tail_weight:g}, r = {c.loss.top_k_ratio:g} "
                         f"(k = {tail_k(h * w, c.loss.top_k_ratio)})"],
            ["analysed checkpoint", checkpoint_label(c)]]
    if inputs.observed is not None:
        o = inputs.observed
        rows += [["scoring", o.scoring],
                 ["test images", f"{o.n_good} good + {o.n_defective} defective"],
                 ["training seeds (headline)", f"S = {o.n_seeds}"]]
    for name, what in (("H1", "H1/H3 training images"), ("H7", "H7 test images")):
        if name in r:
            rows.append([what, f"{r[name].context.n_images} ({r[name].context.split})"])
    if "H4" in r:
        n = r["H4"].context.n_images
        rows.append(["H4 training images", f"{n}" + (
            f" of {c.data.n_train}: H4 runs the backbone on {r['H4'].n_views} augmented views per "
            "image, which no feature cache serves, so it takes the first images (`--max-images`)"
            if r["H4"].n_views and n < c.data.n_train else "")])
    seeds = {name: sorted({claim.n_seeds for claim in r[name].evidence.claims if claim.n_seeds})
             for name in HYPOTHESIS_ORDER if name in r}
    if seeds:
        most = max((max(s) for s in seeds.values() if s), default=1)
        rows.append(["training seeds behind the claims", "; ".join(
            f"{name} S = {'–'.join(map(str, (s[0], s[-1])) if len(s) > 1 else map(str, s)) or '—'}"
            for name, s in seeds.items())
            + (f"; each claim's interval runs over seeds × images (with S = {most} the seed stage "
               f"draws one of {math.comb(2 * most - 1, most)} multisets of seeds: its interval is "
               "about the range of the seeds' values and covers seed-to-seed variation less "
               "well than 95% suggests)" if most > 1 else "")])
    return [markdown_table(["fact", "value"], rows), ""]


def effect_claims(effect: ObservedEffect | None, name: str, contrast: str) -> list[Claim]:
    """A contrast's metric differences as claims about training: Δ > 0 (SPEC §7.3), one per
    metric (a loss on any metric is reported as plainly as a gain)."""
    if effect is None:
        return [Claim.of(name, f"Δ Pixel AP ({contrast})", None, ">", 0.0, 0, 0,
                         about_training=True, note="not measured: no such checkpoints")]
    return [Claim.of(f"{name}: {METRIC_LABELS[key]}", f"Δ {METRIC_LABELS[key]} ({contrast})",
                     effect.metrics[key].difference, ">", 0.0, effect.n_seeds,
                     effect.n_good + effect.n_defective, about_training=True)
            for key in OBSERVED_METRICS]


def _observed_section(inputs: ReportInputs) -> list[str]:
    lines = ["### 1.1 Observed effect (the headline)", ""]
    if inputs.observed is None:
        return lines + ["No baseline checkpoint or λ = 0 sweep run was given, so the effect of tail "
                        "training is not measured.", ""]
    return lines + [tables.markdown(inputs.observed), "", f"The study reported: {STUDY_OBSERVED}.", ""]


def _agreement(name: str, ours: Evidence) -> str:
    """SPEC §7.4: evidence against evidence — only claims resolved on both sides compare — and
    whether a verdict difference is only the rule's."""
    study = STUDY_CLAIMS[name]
    theirs = {c.name: c for c in study.v2.claims}
    both = [(c, theirs[c.name]) for c in ours.claims if c.name in theirs
            and c.status is not Status.NOT_RESOLVED and theirs[c.name].status is not Status.NOT_RESOLVED]
    if not both:
        evidence = ("no claim is resolved on both sides, so the evidence cannot be compared; our "
                    "measurements: " + "; ".join(claim_text(c) for c in ours.claims))
    else:
        same = [a.name for a, b in both if a.status is b.status]
        differ = [f"{a.name} ({a.status.value} here, {b.status.value} on the study's numbers)"
                  for a, b in both if a.status is not b.status]
        evidence = "; ".join(part for part in (
            f"agrees on {', '.join(same)}" if same else "",
            f"differs on {'; '.join(differ)}" if differ else "") if part)
    rule = "" if study.verdict == study.v2.verdict.value else \
        (f" The study's own {study.verdict} differs from what its numbers give under SPEC §7 "
         f"({study.v2.verdict.value}): that difference is the rule's, not the evidence's.")
    remark = f" Note on the study's numbers: {study.remark}." if study.remark else ""
    return f"Compared on evidence (SPEC §7.4): {evidence}.{rule}{remark}"


def _hypothesis_section(number: int, name: str, inputs: ReportInputs) -> list[str]:
    result = inputs.results[name]
    study = STUDY_CLAIMS[name]
    ev = result.evidence
    return [f"### 2.{number} {TITLES[name]}", "", f"**Hypothesis:** {study.claim}.", "",
            f"**Method:** {METHODS[name]}", "", "**Result:**", "", tables.markdown(result).rstrip(), "",
            *_figure_lines(FIGURES_OF[name], inputs), "",
            f"**Our verdict: {ev.verdict.value}** — {headline(ev)}."
            + (f" {control_sentence(result.flip_control)}"
               if getattr(result, "flip_control", None) is not None else ""), "",
            f"The study: {study.verdict} ({study.evidence}); SPEC §7's rules on the study's own "
            f"numbers: {study.v2.verdict.value}. {_agreement(name, ev)}", ""]


def _summary_table(inputs: ReportInputs) -> str:
    rows = []
    for name in HYPOTHESIS_ORDER:
        if name not in inputs.results:
            continue
        ev, study = inputs.results[name].evidence, STUDY_CLAIMS[name]
        rows.append([f"**{name}**", study.claim, study.verdict, study.v2.verdict.value,
                     f"**{ev.verdict.value}**", headline(ev)])
    return markdown_table(["hypothesis", "claim", "study (its rule)", "SPEC §7 on the study's numbers",
                           "ours", "our claims"], rows)


def _optimum_section(inputs: ReportInputs) -> list[str]:
    lines = ["### 3.2 Optimal hyper-parameters (a description, not evidence)", ""]
    found = []
    for param in ("tail_weight", "tail_top_k_ratio"):
        table = ablation(inputs.sweep_runs, param, inputs.category)
        if table is None:
            lines += [f"{PARAM_LABELS[param]} was not swept.", ""]
            continue
        found.append(f"{PARAM_LABELS[param]} = {table.best:g} (study: {STUDY_OPTIMUM[param]:g})")
        lines += [f"**{PARAM_LABELS[param]}**", "", table.markdown(), ""]
    if found:
        lines += ["Best by measured Pixel AP: " + "; ".join(found) + ". A best value is chosen on "
                  "the test set it would be judged on: it describes the sweep and is never used "
                  "as evidence (H4's claims compare r = 2%, fixed in advance).", ""]
    lines += _figure_lines(("fig6",), inputs)
    lines += ["", "### 3.3 Random-k control", ""]
    if inputs.control is None:
        return lines + ["No random-k run was trained at the analysed checkpoint's λ and r, so "
                        "concentration on the *hardest* patches is not separated from "
                        "concentration as such.", ""]
    return lines + [
        "A model trained with the same λ and r but selecting k *random* patches gets the same "
        "gradient magnitude on its selection; if it gained as much, concentration alone, not the "
        "choice of the hardest patches, would explain the effect.", "",
        effect_table.markdown(inputs.control, ("random-k", "top-k")), ""]


def _conclusion(inputs: ReportInputs) -> list[str]:
    """The headline and the random-k control first: a mechanism explains an effect only where
    there is one, and only the hardest-patch choice if random-k does not match it."""
    lines = ["## 4. Conclusion", ""]
    effects = effect_claims(inputs.observed, "headline", "tail-aware − λ = 0")
    controls = effect_claims(inputs.control, "random-k control", "top-k − random-k")
    lines += [f"- {claim_text(c)}." for c in effects + controls]
    gain = [c for c in effects if c.status is Status.HOLDS]
    loss = [c for c in effects if c.status is Status.FAILS]
    if loss:
        lines.append("- Tail training **lowers** " + ", ".join(c.name.split(": ")[-1] for c in loss)
                     + " here (interval below 0 over seeds × images).")
    if not gain:
        lines.append("- No metric shows a gain of tail training here, so no mechanism is credited "
                     "with explaining one; the hypotheses below are read as properties of the "
                     "trained models, not as the cause of an effect.")
    elif all(c.status is Status.HOLDS for c in controls):
        lines.append("- Tail training gains and top-k beats random-k on every metric: the choice "
                     "of the hardest patches matters; the hypotheses below say which mechanism "
                     "carries it.")
    else:
        metric = lambda c: c.name.split(": ")[-1]
        gained = [metric(c) for c in gain]
        beaten = {metric(c) for c in controls if c.status is Status.HOLDS}
        missing = [m for m in gained if m not in beaten]
        if missing:
            lines.append(f"- Tail training gains on {', '.join(gained)}, but top-k does not beat "
                         f"random-k on {', '.join(missing)}: the choice of the hardest patches is "
                         "not established as the cause there.")
        else:
            lines.append(f"- Tail training gains on {', '.join(gained)}, and top-k beats random-k "
                         "there too: consistent with the choice of the hardest patches mattering "
                         "on that metric — weak evidence when it rests on an interval that barely "
                         "excludes 0 among many.")
    for name in HYPOTHESIS_ORDER:
        if name in inputs.results:
            ev = inputs.results[name].evidence
            control = getattr(inputs.results[name], "flip_control", None)
            lines.append(f"- {name}: **{ev.verdict.value}** — {ev.reason}."
                         + (f" {control_sentence(control)}" if control is not None else ""))
    lines += ["", "Our data (the synthetic demo set or the given data set) differ from the study's, so "
              "the numbers differ; verdicts come from the claims of SPEC §7 (identities are checks, "
              "never evidence), not tuned.", ""]
    return lines


def report_markdown(inputs: ReportInputs) -> str:
    """The whole REPORT.md text."""
    m = inputs.manifest
    lines = [f"# Tail-Aware Loss mechanism analysis — {inputs.category}", "",
             f"Generated by `{m.get('command', 'mechanism report')}` at {m.get('created_utc', '?')} "
             f"(git {m.get('git_commit') or 'unknown'}, device {m.get('device', '?')}); see "
             f"`manifest.json` for versions, seeds and hashes.", "",
             *_facts(inputs),
             "## 1. Research question", "", *_observed_section(inputs),
             "### 1.2 Question", "",
             "Why does concentrating on a few hardest patches (the top-k of N, e.g. the hardest 2%) change what "
             "a normalizing-flow detector learns, and which mechanism explains it?", "",
             "### 1.3 The Tail-Aware Loss", "",
             "`L = (1 − λ) · mean over all N patches of NLL + λ · mean over the top-k patches of NLL`, "
             "k = max(1, round(N·r)), per image, NLL in nats per dimension.", "",
             "### 1.4 How verdicts are reached (SPEC §7)", "",
             "Each hypothesis is a set of named claims: a measured quantity with its 95% interval "
             "(over training seeds × images), a threshold and a direction. A claim holds when its "
             "interval lies entirely on the claimed side, fails when it lies entirely on the other, "
             f"and is not resolved otherwise; a claim about what training changes needs ≥ {MIN_SEEDS} "
             "seeds. SUPPORTED: every claim holds; NOT SUPPORTED: every claim fails; PARTIAL: some "
             "hold, some fail, none open; INCONCLUSIVE otherwise. Numbers fixed by the loss or a "
             "definition (N/k, oracle purity) are printed as identity checks and never count.", "",
             "## 2. Hypotheses", ""]
    present = [n for n in HYPOTHESIS_ORDER if n in inputs.results]
    for number, name in enumerate(present, start=1):
        lines += _hypothesis_section(number, name, inputs)
    lines += ["## 3. Summary", "", "### 3.1 Verdicts", "", _summary_table(inputs), "",
              *_figure_lines(("fig7",), inputs), "", *_optimum_section(inputs), *_conclusion(inputs)]
    return "\n".join(lines).rstrip() + "\n"
