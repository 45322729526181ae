"""``mechanism study``: categories × seeds × the conditions of SPEC §7.5, trained, evaluated,
analysed and reported in one resumable batch.

Steps: (1) the backbone runs once per image of every category into the feature cache (here,
or on a cluster one job per category, so ``cache_dir`` must be on a file system they share); (2) the
distinct trainings are trained and evaluated in the runs folder, here or by the workers of a
``Launch`` (local processes, one per GPU, or a Slurm array); (3) the sweeps' shared runs are
linked and their tables rebuilt; (4) every category gets a full report (``build_report``:
the analyses and every contrast over all its seeds) in
``out/categories/<category>/``, rebuilt only when its checkpoints changed; (5) the contrasts
of every category and their macro mean, and the study's REPORT.md, tables and manifest.

Layout of ``out``::

    REPORT.md, manifest.json
    tables/study.{json,csv,md}      per-category rows and the macro mean of each contrast
    categories/<category>/          a full report per category (REPORT.md, tables, figures)

``out`` changes in one transaction (built in a hidden sibling, swapped in at the end): a
failed or killed study leaves the previous study folder exactly as it was; the trainings it
finished stay in the runs folder, so the next call resumes from them.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mechanism.backbone.model import load_backbone
from mechanism.data.facts import data_facts
from mechanism.data.mvtec import category_folder
from mechanism.device import THREADS_ENV, resolve_device, threads_choice, usable_cpus
from mechanism.errors import MechanismError
from mechanism.eval.macro_effect import MacroContrast, StudyContrasts, macro_contrast
from mechanism.io.atomic import write_text
from mechanism.io.hashing import file_sha256
from mechanism.io.manifest import build_manifest, code_digest
from mechanism.io.text import plural
from mechanism.io.transaction import check_output_folder, check_own_folder, locked, output_folder
from mechanism.pipelines.analyze import AnalysisSettings
from mechanism.pipelines.contrasts import Condition, Evaluations, describe, sweep_checkpoints
from mechanism.pipelines.report import build_report
from mechanism.pipelines.study_plan import (FeatureJob, ShardJob, StudyPlan, category_features,
                                            linked_runs, study_specs, train_shard, unique_runs)
from mechanism.pipelines.workers import Launch, run_jobs
from mechanism.report.files import read_results, write_result
from mechanism.report.study_document import StudyInputs, study_markdown
from mechanism.sweep.plan import CHECKPOINT_FILE, METRICS_FILE
from mechanism.sweep.run import RunOutcome, prepare_sweep, read_record, run_sweep
from mechanism.train.checkpoint import load_checkpoint

CATEGORIES = "categories"
STUDY_ENTRIES = ("REPORT.md", "manifest.json", "tables", CATEGORIES)


@dataclass(frozen=True)
class StudyOutcome:
    report: Path                        # REPORT.md
    contrasts: tuple[MacroContrast, ...]
    seconds: float


def study_contrasts(plan_: StudyPlan) -> tuple[tuple[str, Condition, Condition], ...]:
    """(name, baseline, candidate) of SPEC §7.3's contrasts: the headline, the random-k
    control and H4's pre-registered r = 10% and 100% → 2%."""
    lam, r = plan_.tail_weight, plan_.top_k_ratio
    tail = (lam, r, "topk")
    return (("headline", (0.0, r, "topk"), tail), ("random_k_control", (lam, r, "random"), tail),
            *((f"H4.performance({100 * q:g}%)", (lam, q, "topk"), tail)
              for q in (0.1, 1.0) if q in plan_.ratios and q != r))


class _Progress:
    """``study: 7/18 runs finished, about 4 min left`` — from the finished runs on disk."""

    def __init__(self, runs: Path, folders: list[str], log: Callable[[str], None]):
        self.runs, self.folders, self.log = runs, folders, log
        self.start, self.first = time.perf_counter(), self._finished()
        self.last = self.first

    def _finished(self) -> int:
        return sum((self.runs / f / METRICS_FILE).is_file() for f in self.folders)

    def __call__(self, *_):
        done = self._finished()
        if done == self.last:
            return
        self.last = done
        rate = (time.perf_counter() - self.start) / max(done - self.first, 1)
        left = (len(self.folders) - done) * rate
        eta = "" if done == len(self.folders) else \
            f", about {left:.0f} s left" if left < 90 else f", about {left / 60:.0f} min left"
        self.log(f"study: {done}/{len(self.folders)} runs finished{eta}")


def _worker_jobs(plan_: StudyPlan, data_root: Path, runs: Path, device: torch.device,
                 choice: str, cache_dir: Path, launch: Launch) -> list[ShardJob]:
    """Local workers train on ``device`` (one per GPU on CUDA); a cluster's jobs resolve the
    ``--device`` ``choice`` themselves, on their own nodes."""
    n = launch.workers
    if launch.cluster is not None:
        devices = [choice] * n
    elif device.type == "cuda":
        count = torch.cuda.device_count()
        devices = [f"cuda:{i % count}" for i in range(n)]     # one worker per GPU
    else:
        devices = [str(device)] * n
    choice_threads = threads_choice(os.environ.get(THREADS_ENV))
    threads = choice_threads if isinstance(choice_threads, int) else max(1, len(usable_cpus()) // n)
    if launch.cluster == "slurm":
        threads = None                      # the job's allocation (cpus_per_task) decides
    on_cpu = [d == "cpu" or (d == "auto" and not torch.cuda.is_available()) for d in devices]
    return [ShardJob(plan_, str(data_root), str(runs), (i + 1, n), devices[i], str(cache_dir),
                     threads if on_cpu[i] else None) for i in range(n)]


def _link(runs: Path, pairs: list[tuple[str, str]]) -> None:
    """Give each linked folder its owner's checkpoint (a hard link, else a copy), atomically;
    a link left from an earlier owner file is replaced."""
    for owner, linked in pairs:
        source, target = runs / owner / CHECKPOINT_FILE, runs / linked / CHECKPOINT_FILE
        if not source.is_file() or (target.exists() and os.path.samefile(source, target)):
            continue
        if target.exists() and (target.parent / METRICS_FILE).is_file() \
                and file_sha256(target) == file_sha256(source):
            continue                                  # a finished copy of the same file
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.link-tmp")
        staged.unlink(missing_ok=True)
        try:
            os.link(source, staged)
        except OSError:
            shutil.copy2(source, staged)
        os.replace(staged, target)


def _category_report(plan_: StudyPlan, category: str, runs: Path, out: Path, device: torch.device,
                     evaluations: Evaluations, log: Callable[[str], None]) -> None:
    """``out/categories/<category>``, rebuilt only when its checkpoints or settings changed."""
    index = sweep_checkpoints([runs], category, plan_.seeds)
    seed = plan_.seeds[0]
    ckpt = index[(plan_.tail_weight, plan_.top_k_ratio, "topk")][seed]
    baseline = index[(0.0, plan_.top_k_ratio, "topk")][seed]
    inputs = {"n_boot": plan_.n_boot, "analysed_seed": seed, "training_seeds": list(plan_.seeds),
              "code": code_digest(), "checkpoints": {
        f"{describe(c)} seed {s}": file_sha256(p) for c, by_seed in sorted(index.items())
        for s, p in sorted(by_seed.items())}}
    folder = out / CATEGORIES / category
    manifest = folder / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(manifest.read_text(encoding="utf-8")).get("study_inputs") == inputs:
                log(f"report {category}: up to date")
                return
    log(f"report {category}: analyses and contrasts over seeds {list(plan_.seeds)}")
    build_report(ckpt, folder, baseline_ckpt=baseline, sweeps=[runs], device=device,
                 settings=AnalysisSettings(n_boot=plan_.n_boot, training_seeds=plan_.seeds), log=log,
                 evaluations=evaluations, provenance={"study_inputs": inputs})


def _category_contrasts(plan_: StudyPlan, category: str, runs: Path, evaluations: Evaluations,
                        into: dict[str, tuple[list, list, dict]]) -> None:
    """Add ``category``'s effect and draws of every study contrast to ``into`` (name →
    effects, draws, missing), or why it has none."""
    index = sweep_checkpoints([runs], category, plan_.seeds)
    for name, baseline, candidate in study_contrasts(plan_):
        effects, draws, missing = into[name]
        effect, why = evaluations.conditions(index, baseline, candidate, plan_.n_boot, 0)
        if effect is None:
            missing[category] = why
            continue
        effects.append(effect)
        draws.append(evaluations.draws(index, baseline, candidate, plan_.n_boot, 0))


def _check_study_folder(out: Path, plan_: StudyPlan) -> None:
    """Refuse an ``out`` holding something else than a study's files, or other categories."""
    check_own_folder(out, STUDY_ENTRIES, "a study folder")
    reports = out / CATEGORIES
    extra = sorted(set(p.name for p in reports.iterdir() if not p.name.startswith("."))
                   - set(plan_.categories)) if reports.is_dir() else []
    if extra:
        raise MechanismError(f"{out} holds reports of categories this study does not run "
                             f"({', '.join(extra)}): choose another --out or delete them")


def run_study(data_root: str | Path, out: str | Path, runs: str | Path, plan_: StudyPlan,
              device: torch.device | str = "cpu", cache_dir: Path | None = None,
              launch: Launch = Launch(), progress: bool = True,
              log: Callable[[str], None] = print, report_device: str | None = None) -> StudyOutcome:
    """Train, evaluate, analyse and report ``plan_`` (see the module docstring).

    ``device`` trains (and, unless ``report_device`` is given, evaluates and analyses); a
    cluster's jobs resolve it on their nodes, so a submitting node without a GPU passes
    ``report_device="cpu"`` for its own share.

    Raises:
        MechanismError: bad data, an output or runs folder that cannot be written or holds
            another setup's runs, a failed worker.
    """
    start = time.perf_counter()
    data_root, out, runs = Path(data_root), check_output_folder(out), check_output_folder(runs)
    a, b = out.resolve(), runs.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise MechanismError(f"--out {out} and --runs {runs} must be separate folders, neither "
                             "inside the other: the study folder is replaced as a whole")
    choice = device if isinstance(device, str) else str(device)
    device = resolve_device(report_device or choice)
    for category in plan_.categories:
        category_folder(data_root, category)          # a clear error before any folder is made
    _check_study_folder(out, plan_)
    load_backbone(plan_.backbone)                     # stages and input size fit the network
    specs = study_specs(plan_, data_root)
    for spec in specs.values():
        data = prepare_sweep(spec, runs)              # every setup check before any training
    trainings = unique_runs(specs)
    log(f"study: {plural(len(plan_.categories), 'category', 'categories')} × "
        f"{plural(len(plan_.seeds), 'seed')}, "
        f"{len(trainings)} trainings of {plan_.epochs} epochs")
    with contextlib.ExitStack() as stack:
        stack.enter_context(locked(runs))             # one study (and its workers) per runs folder
        stage = stack.enter_context(output_folder(out))   # out changes all at once, or not at all
        if cache_dir is None:
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix=".features-", dir=runs)))      # beside the runs: a cluster's workers see it
        feature_jobs = [FeatureJob(str(data_root), c, str(device) if launch.cluster is None else choice,
                                   str(cache_dir), plan_.backbone, progress and launch.cluster is None)
                        for c in plan_.categories]    # the backbone once per image, before training
        cluster = Launch(launch.workers, launch.cluster, launch.options, launch.folder or runs / ".submitit")
        lines = run_jobs(category_features, feature_jobs, cluster if launch.cluster else Launch())
        for line in (line for per_job in lines for line in per_job):
            log(line)
        tracker = _Progress(runs, [run.folder for _, run in trainings], log)
        tracker()
        if tracker.first == len(trainings):
            log("study: every run is trained already")
        elif launch.inline:
            def on_run(outcome: RunOutcome) -> None:
                log(f"  {outcome.run.folder}: {outcome.status}")
                tracker()
            train_shard(ShardJob(plan_, str(data_root), str(runs), (1, 1), str(device),
                                 str(cache_dir), progress=progress), on_run=on_run)
        else:
            jobs = _worker_jobs(plan_, data_root, runs, device, choice, cache_dir, launch)
            log(f"study: {len(jobs)} workers ({', '.join(sorted({j.device for j in jobs}))}"
                f"{f', {launch.cluster} cluster' if launch.cluster else ''})")
            run_jobs(train_shard, jobs, cluster, poll=tracker)
        _link(runs, linked_runs(specs))
        for spec in specs.values():                   # evaluates the linked runs, rebuilds tables
            run_sweep(spec, runs, device=device, cache_dir=cache_dir, progress=False,
                      on_run=lambda o: o.status == "skipped" or log(f"  {o.run.folder}: {o.status}"))
        by_name = {name: ([], [], {}) for name, _, _ in study_contrasts(plan_)}
        for category in plan_.categories:             # one category's evaluations in memory at a time
            evaluations = Evaluations(device, cache_dir, progress)
            _category_report(plan_, category, runs, stage, device, evaluations, log)
            _category_contrasts(plan_, category, runs, evaluations, by_name)
        contrasts = tuple(macro_contrast(name, describe(b), describe(c), *by_name[name])
                          for name, b, c in study_contrasts(plan_))
        _write_study(stage, plan_, data_root, runs, device, data, [r for _, r in trainings],
                     StudyContrasts(plan_.categories, plan_.seeds, contrasts))
    seconds = time.perf_counter() - start
    log(f"study: {out / 'REPORT.md'} ({seconds / 60:.1f} min)")
    return StudyOutcome(out / "REPORT.md", contrasts, seconds)


def _write_study(out: Path, plan_: StudyPlan, data_root: Path, runs: Path, device: torch.device,
                 data: dict[str, dict[str, str]], trained: list, contrasts: StudyContrasts) -> None:
    """REPORT.md, manifest.json and tables/ into ``out`` (the study's staged folder)."""
    results = {c: read_results(out / CATEGORIES / c) for c in plan_.categories}
    facts = {}
    for category in plan_.categories:
        ckpt = load_checkpoint(next(iter(next(iter(
            sweep_checkpoints([runs], category, plan_.seeds).values())).values())))
        facts[category] = data_facts(data_root, category, ckpt.backbone["config"]["input_size"],
                                     ckpt.grid[:2])
    scoring = next((e.scoring for c in contrasts.contrasts for e in c.effects), "")
    model = (f"Model: {ckpt.backbone['config']['name']} backbone (frozen, ImageNet weights), "
             f"D = {ckpt.grid[2]} feature channels on a {ckpt.grid[0]}×{ckpt.grid[1]} grid; a "
             f"normalizing flow of {ckpt.flow.n_blocks} coupling blocks trained on them"
             + (f"; scoring: {scoring}" if scoring else "") + ".")
    write_result(contrasts, out / "tables", "study")
    checkpoints = {run.folder: {"path": str(runs / run.folder / CHECKPOINT_FILE), "sha256": read_record(
        runs / run.folder / METRICS_FILE)["checkpoint_sha256"]} for run in trained}
    manifest = build_manifest(device, {"analysis": 0, "training": list(plan_.seeds)}, checkpoints,
                              {"root": str(data_root), **{f"{c}/{k}": v for c, d in data.items()
                                                          for k, v in d.items()}},
                              {"study": plan_.to_dict(), "runs": str(runs)})
    text = study_markdown(StudyInputs(plan_.to_dict(), contrasts, results, manifest, facts, model))
    write_text(out / "REPORT.md", text)
    write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
