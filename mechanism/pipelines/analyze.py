"""Run the mechanism analyses on a checkpoint and write their tables (the ``analyze`` command).

``analyze(...)`` loads the checkpoint (and the optional baseline, selection and reference
checkpoints), runs each requested hypothesis, writes ``<out>/tables/<H>.{json,csv,md}`` and
``<out>/manifest.json``, and returns the result objects.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch

from mechanism.analyzers import h1_edge, h3_gradient, h4_dilution, h7_calibration
from mechanism.analyzers.registry import CONFIGS, HYPOTHESES
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector, load_detector
from mechanism.io.hashing import file_sha256
from mechanism.io.manifest import build_manifest, write_manifest
from mechanism.io.transaction import check_output_folder, output_folder
from mechanism.pipelines.contrasts import (Evaluations, SweepCheckpoints, shared_seeds,
                                          sweep_checkpoints)
from mechanism.report.files import write_result
from mechanism.sweep.results import read_sweep_results, summarize_sweep
from mechanism.train.checkpoint import Checkpoint


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings shared by all analyzers; each analyzer takes the fields its config has."""
    seed: int = 0                       # seed of every random choice
    n_boot: int = 1000                  # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32                # images per forward/backward batch
    max_images: int | None = None       # use at most this many images per split (None: each
                                        # analyzer's default: all, except H4's 64 training images)
    overrides: tuple[tuple[str, Any], ...] = ()   # (hypothesis-qualified) extra fields, e.g. ("H3.lambdas", (0, 1))
    training_seeds: tuple[int, ...] | None = None  # the sweeps' training seeds to use (None: all)

    def config_for(self, hypothesis: str):
        cls = CONFIGS[hypothesis]
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in (("seed", self.seed), ("n_boot", self.n_boot),
                                     ("batch_size", self.batch_size), ("max_images", self.max_images))
                  if k in names and v is not None}
        for key, value in self.overrides:
            target, _, name = key.rpartition(".")
            if target in ("", hypothesis) and name in names:
                values[name] = value
        return cls(**values)


@dataclass
class AnalysisInputs:
    """The loaded models and data of one ``analyze`` call."""
    detector: Detector
    data_root: str
    category: str
    baseline: Detector | None = None
    selection: Detector | None = None
    reference: Detector | None = None
    sweep: Path | None = None                      # the sweep whose results.csv H4 summarises
    sweep_sources: tuple[Path, ...] = ()           # the folders its runs come from (H4 names them)
    checkpoints: SweepCheckpoints | None = None    # its checkpoints by condition (H4.performance)
    evaluations: Evaluations | None = None         # evaluates them, each once
    replicates: tuple[tuple[Detector, Detector | None], ...] = ()   # (candidate, baseline or
                                                   # None without one) of the other training seeds


def _check_compatible(main: Checkpoint, other: Checkpoint, role: str) -> None:
    if other.grid != main.grid:
        raise MechanismError(f"{role} checkpoint has grid {other.grid} (H, W, D), the analysed one "
                             f"{main.grid}: paired analyses need the same features")
    if other.backbone != main.backbone:
        raise MechanismError(f"{role} checkpoint uses another backbone than the analysed one")
    mine, theirs = main.data, other.data
    if (theirs.category, theirs.fingerprint) != (mine.category, mine.fingerprint):
        raise MechanismError(
            f"{role} checkpoint was trained on other images ({theirs.category}, {theirs.n_train} "
            f"images, fingerprint {theirs.fingerprint[:12]}…) than the analysed one "
            f"({mine.category}, {mine.n_train} images, {mine.fingerprint[:12]}…): paired analyses "
            "need models of the same training images")


def run_hypothesis(name: str, inputs: AnalysisInputs, settings: AnalysisSettings,
                   cache_dir: Path | None = None, progress: bool = True):
    """One analyzer's result object (``cache_dir``: feature cache folder, None for none)."""
    cfg = settings.config_for(name)
    common = dict(cache_dir=cache_dir, progress=progress)
    det, root, cat = inputs.detector, inputs.data_root, inputs.category
    if name == "H1":
        return h1_edge.run(det, root, cat, cfg, baseline=inputs.baseline,
                           replicates=inputs.replicates, **common)
    if name == "H3":
        return h3_gradient.run(det, root, cat, cfg, baseline=inputs.baseline,
                               replicates=inputs.replicates, **common)
    if name == "H4":
        return h4_dilution.run(det, root, cat, cfg, selection=inputs.selection,
                               reference=inputs.reference, measured=measured_ratios(inputs),
                               performance=performance_contrasts(inputs, settings),
                               mean_loss_check=mean_loss_check(inputs, settings),
                               replicates=tuple(c for c, _ in inputs.replicates), **common)
    if name == "H7":
        return h7_calibration.run(det, root, cat, cfg, baseline=inputs.baseline,
                                  replicates=inputs.replicates, **common)
    raise MechanismError(f"unknown hypothesis {name!r}: use one of {', '.join(HYPOTHESES)} or all")


def measured_ratios(inputs: AnalysisInputs) -> h4_dilution.MeasuredRatios | None:
    """The sweep's measured metrics per top-k ratio for H4 (None without a sweep folder)."""
    if inputs.sweep is None:
        return None
    runs = read_sweep_results(inputs.sweep)
    return h4_dilution.MeasuredRatios(", ".join(map(str, inputs.sweep_sources or (inputs.sweep,))),
                                      summarize_sweep(runs, h4_dilution.SWEEP_PARAM, inputs.category))


def performance_contrasts(inputs: AnalysisInputs, settings: AnalysisSettings
                          ) -> tuple[h4_dilution.PerformanceContrast, ...]:
    """H4.performance's contrasts: the sweep's checkpoints at r = 2% against r = 10% and 100%,
    at the analysed checkpoint's λ, top-k (empty without a sweep's checkpoints)."""
    if inputs.checkpoints is None or inputs.evaluations is None:
        return ()
    lam = inputs.detector.ckpt.loss.tail_weight
    out = []
    for ratio in h4_dilution.CONTRAST_RATIOS:
        effect, note = inputs.evaluations.conditions(
            inputs.checkpoints, (lam, ratio, "topk"), (lam, h4_dilution.STUDY_RATIO, "topk"),
            settings.n_boot, settings.seed)
        out.append(h4_dilution.PerformanceContrast(ratio, effect, note))
    return tuple(out)


def mean_loss_check(inputs: AnalysisInputs, settings: AnalysisSettings) -> float | None:
    """Pixel AP(r = 100%) − Pixel AP(λ = 0) of the seed where they differ most (signed): r = 100%
    *is* the mean loss, so identically seeded runs must agree — seed by seed, not only on
    average (None without both in the sweep)."""
    if inputs.checkpoints is None or inputs.evaluations is None:
        return None
    loss = inputs.detector.ckpt.loss
    mean_only, full = (0.0, loss.top_k_ratio, "topk"), (loss.tail_weight, 1.0, "topk")
    seeds, _ = shared_seeds(inputs.checkpoints, mean_only, full)
    gaps = [inputs.evaluations.of(inputs.checkpoints[full][s]).metrics.pixel_ap
            - inputs.evaluations.of(inputs.checkpoints[mean_only][s]).metrics.pixel_ap for s in seeds]
    return max(gaps, key=abs) if gaps else None


def _condition(ckpt: Checkpoint) -> tuple[float, float, str]:
    return ckpt.loss.tail_weight, ckpt.loss.top_k_ratio, ckpt.loss.selection


def replicate_pairs(inputs: AnalysisInputs, ckpt: Path, baseline_ckpt: Path | None,
                    device: torch.device, backbone_weights: str | None = None
                    ) -> tuple[tuple[Detector, Detector | None], ...]:
    """The sweep's checkpoints of the analysed condition for the other training seeds, each with
    that seed's baseline-condition checkpoint when a baseline is analysed (seeds without one are
    left out) — only when the analysed checkpoint (and baseline) are themselves the sweep's
    checkpoints of their seed (else none: other seeds would pair unlike models).

    Raises:
        MechanismError: a replicate on another grid or backbone.
    """
    index, seed = inputs.checkpoints or {}, inputs.detector.ckpt.train.seed
    tail = index.get(_condition(inputs.detector.ckpt), {})
    if seed not in tail or not tail[seed].samefile(ckpt):
        return ()
    base = {}
    if inputs.baseline is not None:
        base = index.get(_condition(inputs.baseline.ckpt), {})
        if seed not in base or not base[seed].samefile(baseline_ckpt):
            return ()
    seeds = [s for s in sorted(tail) if s != seed and (inputs.baseline is None or s in base)]

    def load(path: Path) -> Detector:
        other = load_detector(path, device, backbone_weights)
        _check_compatible(inputs.detector.ckpt, other.ckpt, f"seed replicate {path}")
        return other

    return tuple((load(tail[s]), load(base[s]) if inputs.baseline is not None else None)
                 for s in seeds)


def load_inputs(ckpt: str | Path, device: torch.device, data_root: str | Path | None = None,
                category: str | None = None, baseline_ckpt: str | Path | None = None,
                selection_ckpt: str | Path | None = None, reference_ckpt: str | Path | None = None,
                sweep: str | Path | None = None, backbone_weights: str | None = None) -> AnalysisInputs:
    """Load every model an analysis needs; data and category default to the checkpoint's."""
    det = load_detector(ckpt, device, backbone_weights)
    extra = {}
    for role, path in (("baseline", baseline_ckpt), ("selection", selection_ckpt),
                       ("reference", reference_ckpt)):
        if path is not None:
            other = load_detector(path, device, backbone_weights)
            _check_compatible(det.ckpt, other.ckpt, role)
            extra[role] = other
    if sweep is not None and not Path(sweep).is_dir():
        raise MechanismError(f"sweep folder {sweep} does not exist")
    category = category if category is not None else det.ckpt.data.category
    return AnalysisInputs(det, str(data_root if data_root is not None else det.ckpt.data.root),
                          category, sweep=Path(sweep) if sweep is not None else None, **extra)


def analyze(ckpt: str | Path, hypotheses: tuple[str, ...], out: str | Path,
            device: torch.device | str = "cpu", settings: AnalysisSettings = AnalysisSettings(),
            cache_dir: Path | None = None, progress: bool = True,
            on_result: Callable[[str, Any], None] | None = None,
            sweep_sources: list[Path] | None = None, evaluations: Evaluations | None = None,
            stage: Path | None = None, **input_kwargs) -> dict[str, Any]:
    """Run ``hypotheses`` on ``ckpt``; write tables and the manifest under ``out``.

    Every analysis runs before anything is written; the files then replace ``out``'s in one
    transaction (``io.transaction.output_folder``), so a failure leaves ``out`` as it was.
    ``stage``: write into this folder instead (a caller's own open transaction on ``out``).

    ``input_kwargs`` go to ``load_inputs`` (data_root, category, baseline_ckpt, sweep, ...).
    ``sweep_sources``: the sweep folders holding the checkpoints of ``sweep``'s runs (default:
    ``sweep`` itself); ``evaluations`` shares evaluated checkpoints with the caller.
    ``on_result(name, result)`` is called as each analysis finishes (the CLI prints tables).
    ``cache_dir``: the feature cache folder (``backbone.features.default_cache_dir()`` is the
    CLI's), or None for no cache.
    """
    unknown = [h for h in hypotheses if h not in HYPOTHESES]
    if unknown:
        raise MechanismError(f"unknown hypothesis {unknown[0]!r}: use one of {', '.join(HYPOTHESES)} or all")
    out = check_output_folder(out) if stage is None else Path(out)
    device = resolve_device(device) if isinstance(device, str) else device
    inputs = load_inputs(ckpt, device, **input_kwargs)
    if inputs.sweep is not None:
        inputs.sweep_sources = tuple(sweep_sources or [inputs.sweep])
        inputs.checkpoints = sweep_checkpoints(list(inputs.sweep_sources), inputs.category,
                                               settings.training_seeds)
        inputs.evaluations = evaluations or Evaluations(device, cache_dir, progress)
        baseline_ckpt = input_kwargs.get("baseline_ckpt")
        inputs.replicates = replicate_pairs(inputs, Path(ckpt),
                                            None if baseline_ckpt is None else Path(baseline_ckpt),
                                            device, input_kwargs.get("backbone_weights"))
    results = {}
    for name in hypotheses:
        results[name] = run_hypothesis(name, inputs, settings, cache_dir, progress)
        if on_result is not None:
            on_result(name, results[name])
    checkpoints = {"analysed": str(ckpt)}
    for role in ("baseline", "selection", "reference"):
        if input_kwargs.get(f"{role}_ckpt") is not None:
            checkpoints[role] = str(input_kwargs[f"{role}_ckpt"])
    for replicate in inputs.replicates:                 # the other seeds' checkpoints behind
        for role, model in zip(("analysed", "baseline"), replicate):   # every estimate
            if model is not None:
                seed = model.ckpt.train.seed
                checkpoints[f"{role} (seed {seed})"] = str(inputs.checkpoints[_condition(model.ckpt)][seed])
    manifest = build_manifest(
        device, {"analysis": settings.seed, "training": [inputs.detector.ckpt.train.seed, *(
            c.ckpt.train.seed for c, _ in inputs.replicates)]},
        {role: {"path": p, "sha256": file_sha256(p)} for role, p in checkpoints.items()},
        {"root": inputs.data_root, "category": inputs.category,
         "train_fingerprint": inputs.detector.ckpt.data.fingerprint},
        {"hypotheses": list(hypotheses), "n_boot": settings.n_boot})
    with output_folder(out) if stage is None else contextlib.nullcontext(stage) as folder:
        for name, result in results.items():
            write_result(result, folder / "tables", name)
        write_manifest(folder, manifest)
    return results
