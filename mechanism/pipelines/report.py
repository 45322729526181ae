"""``build_report``: every analysis, the headline and the random-k control, the figures and
REPORT.md in one folder.

Layout of ``out``::

    REPORT.md                the study's structure with our numbers (mechanism.report.document)
    manifest.json            command, versions, device, seeds, checkpoint/data hashes, git commit
    tables/<H>.{json,csv,md} each hypothesis, observed_effect.{json,csv,md} (the headline) and
                             random_k_control.{json,csv,md}
    sweeps/results.csv       the runs of every sweep given (+ summary.md/.csv), for H4 and fig6
    figures/figN_*.{png,pdf} fig1–fig8, as far as the inputs support them

``mechanism figures --results out`` re-renders the figures from these files alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mechanism.analyzers.context import checkpoint_label
from mechanism.analyzers.registry import HYPOTHESES
from mechanism.data.mvtec import fingerprint, read_split
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.figures.render import FigureInputs, render_figures
from mechanism.io.atomic import write_text
from mechanism.io.transaction import check_output_folder, check_own_folder, output_folder
from mechanism.io.manifest import build_manifest, write_manifest
from mechanism.pipelines.analyze import AnalysisSettings, analyze
from mechanism.pipelines.contrasts import Evaluations, SweepCheckpoints, sweep_checkpoints
from mechanism.report.document import ReportInputs, report_markdown
from mechanism.report.files import write_result
from mechanism.sweep.tables import merge_results
from mechanism.sweep.results import SweepRun, read_sweep_results
from mechanism.train.checkpoint import load_checkpoint

REPORT_FILE = "REPORT.md"
REPORT_ENTRIES = (REPORT_FILE, "manifest.json", "tables", "sweeps", "figures")


@dataclass(frozen=True)
class ReportOutcome:
    """What ``build_report`` wrote."""
    report: Path                  # REPORT.md
    results: dict                 # "H1" … → analyzer result
    observed: ObservedEffect | None
    figures: tuple[Path, ...]     # PNG and PDF files written
    skipped_figures: tuple[str, ...]


def sweep_folders(paths: list[str | Path]) -> list[Path]:
    """Each path as a sweep folder (it holds ``results.csv``) or, failing that, its immediate
    sub-folders that do (e.g. ``runs/`` holding ``runs/lambda`` and ``runs/ratio``)."""
    found = []
    for p in map(Path, paths):
        if (p / "results.csv").is_file():
            found.append(p)
            continue
        children = sorted(c for c in p.iterdir() if (c / "results.csv").is_file()) if p.is_dir() else []
        if not children:
            raise MechanismError(f"{p} holds no sweep results (results.csv), nor do its sub-folders")
        found.extend(children)
    return found


def _check_same_test_images(ckpt: Path, baseline_ckpt: Path) -> None:
    """Before any work: the headline evaluates each checkpoint on its own data root, so the two
    roots must hold the same test images (same names and bytes).

    Raises:
        MechanismError: they differ, or a root is gone.
    """
    main, base = (load_checkpoint(p).data for p in (ckpt, baseline_ckpt))
    if Path(main.root).resolve() == Path(base.root).resolve():
        return
    if len({fingerprint(read_split(d.root, d.category, "test")) for d in (main, base)}) > 1:
        raise MechanismError(f"the baseline {baseline_ckpt} was trained from {base.root}, whose "
                             f"{base.category} test images differ from those of {main.root}: the "
                             "headline pairs the two models on the same test images")


def headline_and_control(ckpt: Path, baseline_ckpt: Path | None, index: SweepCheckpoints,
                         evaluations: Evaluations, settings: AnalysisSettings
                         ) -> tuple[ObservedEffect | None, ObservedEffect | None]:
    """The headline (λ = 0 → the analysed checkpoint's λ, its r, top-k) and the random-k
    control (random-k → top-k at that λ and r), over every seed the sweeps hold for both sides.
    Without such runs the headline compares ``baseline_ckpt`` with ``ckpt`` (one seed)."""
    loss = load_checkpoint(ckpt).loss
    tail = (loss.tail_weight, loss.top_k_ratio, "topk")
    headline, _ = evaluations.conditions(index, (0.0, loss.top_k_ratio, "topk"), tail,
                                         settings.n_boot, settings.seed)
    if headline is None and baseline_ckpt is not None:
        labels = tuple(checkpoint_label(load_checkpoint(p)) for p in (baseline_ckpt, ckpt))
        headline = evaluations.contrast({0: Path(baseline_ckpt)}, {0: Path(ckpt)}, labels,
                                        settings.n_boot, settings.seed)
    control, _ = evaluations.conditions(index, (loss.tail_weight, loss.top_k_ratio, "random"),
                                        tail, settings.n_boot, settings.seed)
    return headline, control


def build_report(ckpt: str | Path, out: str | Path, baseline_ckpt: str | Path | None = None,
                 sweeps: list[str | Path] = (), device: torch.device | str = "cpu",
                 settings: AnalysisSettings = AnalysisSettings(), cache_dir: Path | None = None,
                 progress: bool = True, log: Callable[[str], None] = lambda _: None,
                 evaluations: Evaluations | None = None, provenance: dict | None = None) -> ReportOutcome:
    """Analyse ``ckpt`` (against ``baseline_ckpt``), collect ``sweeps`` and write the report to ``out``.

    ``evaluations``: share evaluated checkpoints with the caller (a study evaluates each once);
    ``provenance``: extra manifest fields (a study records what the report was built from).

    Raises:
        MechanismError: unreadable checkpoints, data or sweeps; incompatible checkpoints.
    """
    out = check_output_folder(out)
    check_own_folder(out, REPORT_ENTRIES, "a report folder")
    device = resolve_device(device) if isinstance(device, str) else device
    sources = sweep_folders(list(sweeps)) if sweeps else []
    if baseline_ckpt is not None:
        _check_same_test_images(Path(ckpt), Path(baseline_ckpt))
    with output_folder(out, keep_existing=False) as stage:
        report, results, observed, rendered = _write_report(
            Path(ckpt), stage, baseline_ckpt, sweeps, sources, device, settings,
            evaluations or Evaluations(device, cache_dir, progress), provenance or {}, log)
    log(f"report: {out / report.relative_to(stage)}")
    return ReportOutcome(out / report.relative_to(stage), results, observed,
                         [out / p.relative_to(stage) for p in rendered.written], rendered.skipped)


def _write_report(ckpt: Path, out: Path, baseline_ckpt, sweeps, sources: list[Path], device,
                  settings: AnalysisSettings, evaluations: Evaluations, provenance: dict,
                  log: Callable[[str], None]):
    """Write every file of the report into ``out`` (the transaction's stage)."""
    runs: list[SweepRun] = []
    sweep_dir = None
    if sources:
        sweep_dir = out / "sweeps"
        merged = merge_results(sources, sweep_dir)
        runs = read_sweep_results(sweep_dir)
        log(f"sweeps: {merged.n_runs} runs collected")
    cache_dir, progress = evaluations.cache_dir, evaluations.progress
    results = analyze(ckpt, HYPOTHESES, out, device, settings, cache_dir, progress, stage=out,
                      on_result=lambda name, _: log(f"{name}: analysed"), sweep_sources=sources,
                      evaluations=evaluations, baseline_ckpt=baseline_ckpt, sweep=sweep_dir)
    category = next(iter(results.values())).context.category
    observed, control = headline_and_control(Path(ckpt), baseline_ckpt, sweep_checkpoints(
        sources, category, settings.training_seeds), evaluations, settings)
    for name, effect in (("observed_effect", observed), ("random_k_control", control)):
        if effect is not None:
            write_result(effect, out / "tables", name)
            log(f"{name.replace('_', ' ')}: S = {effect.n_seeds} seeds")
    rendered = render_figures(FigureInputs.from_results(
        results, runs or None, category, {"observed_effect": observed, "random_k_control": control}),
        out / "figures")
    figures = {p.stem.split("_")[0]: p.relative_to(out).as_posix()
               for p in rendered.written if p.suffix == ".png"}
    skipped = dict(line.split(": ", 1) for line in rendered.skipped)
    main = load_detector(ckpt, device)
    analysed = json.loads((out / "manifest.json").read_text(encoding="utf-8"))   # analyze's: every
    manifest = build_manifest(                             # checkpoint behind the analyses
        device, {"analysis": settings.seed, "training": analysed["seeds"]["training"]},
        analysed["checkpoints"],
        {"root": str(main.ckpt.data.root), "category": category,
         "train_fingerprint": main.ckpt.data.fingerprint},
        {"hypotheses": list(results), "n_boot": settings.n_boot,
         "sweeps": [str(p) for p in sweeps], "figures": sorted(figures), "skipped_figures": skipped,
         **provenance})
    write_manifest(out, manifest)
    text = report_markdown(ReportInputs(category, main.ckpt, results, observed, control, runs,
                                        figures, skipped, manifest))
    return write_text(out / REPORT_FILE, text), results, observed, rendered
