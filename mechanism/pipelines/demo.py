"""``mechanism demo``: a small study on the embedded demo set in one call (SPEC §7.5's conditions).

Generates the demo data if missing, trains, for each of three training seeds, the λ sweep (its
λ = 0 run is the mean-only baseline, its λ = 0.7 run the tail-aware model), the r sweep
(1%, 2%, 10%, 100% at λ = 0.7) and the random-k control into one sweep folder, then builds the
report (all analyses on seed 0's checkpoints; the headline, the random-k control and H4's
performance claims over every seed × test image; fig1–fig8; REPORT.md). Every step resumes:
finished runs are skipped, so an interrupted demo continues where it stopped.

The r sweep's run at the tail-aware model's r is the λ sweep's tail-aware run under another name;
its checkpoint is linked, not trained twice (the sweep then only evaluates it).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from mechanism.data.demo import DEMO_CATEGORIES, generate_demo
from mechanism.data.mvtec import category_folder
from mechanism.errors import MechanismError
from mechanism.io.transaction import check_output_folder
from mechanism.pipelines.analyze import AnalysisSettings
from mechanism.pipelines.report import ReportOutcome, build_report
from mechanism.sweep.plan import CHECKPOINT_FILE, SweepSpec, plan
from mechanism.sweep.run import run_sweep
from mechanism.train.config import TrainConfig
from mechanism.train.loss import TailLossConfig


@dataclass(frozen=True)
class DemoData:
    """Size of the generated demo set (per category)."""
    n_train: int = 200
    n_test_good: int = 40
    n_test_defect: int = 60


@dataclass(frozen=True)
class DemoPlan:
    """What the demo trains and analyses."""
    category: str = "grass"
    tail_weight: float = 0.7                            # the tail-aware model's λ
    top_k_ratio: float = 0.02                           # its r
    lambdas: tuple[float, ...] = (0.0, 0.7)              # λ sweep; must hold 0 and tail_weight
    ratios: tuple[float, ...] = (0.01, 0.02, 0.1, 1.0)  # r sweep (at tail_weight); must hold top_k_ratio
    seeds: tuple[int, ...] = (0, 1, 2)                  # training seeds of every condition
    epochs: int = 12
    precision: str = TrainConfig().precision            # training arithmetic (TrainConfig)
    n_boot: int = 1000
    data: DemoData = field(default_factory=DemoData)

    def __post_init__(self):
        if self.category not in DEMO_CATEGORIES:
            raise MechanismError(f"unknown demo category {self.category!r}: use one of "
                                 f"{', '.join(DEMO_CATEGORIES)}")
        if 0.0 not in self.lambdas or self.tail_weight not in self.lambdas:
            raise MechanismError(f"the demo's λ sweep must hold 0 and {self.tail_weight:g}")
        if self.top_k_ratio not in self.ratios:
            raise MechanismError(f"the demo's r sweep must hold {self.top_k_ratio:g}")
        TrainConfig(epochs=self.epochs, precision=self.precision)   # validates before anything is written


QUICK = DemoPlan(ratios=(0.02, 0.1), seeds=(0, 1), epochs=2, n_boot=100,
                 data=DemoData(n_train=24, n_test_good=6, n_test_defect=10))
"""A smoke run of every step (about a minute on 2 CPU cores); its numbers mean nothing."""


@dataclass(frozen=True)
class DemoOutcome:
    report: ReportOutcome
    sweep_folder: Path
    seconds: float


def _ensure_data(root: Path, plan_: DemoPlan, log: Callable[[str], None]) -> None:
    if root.is_dir() and any(root.iterdir()):
        category_folder(root, plan_.category)   # a clear error if the category is missing
        log(f"data: using {root}")
        return
    log(f"data: generating the demo set in {root}")
    d = plan_.data
    generate_demo(root, categories=(plan_.category,), n_train=d.n_train, n_test_good=d.n_test_good,
                  n_test_defect=d.n_test_defect)


def _link_shared_run(lambda_spec: SweepSpec, ratio_spec: SweepSpec, runs: Path) -> None:
    """Link the λ sweep's tail-aware checkpoints into the r sweep's folders of the same config."""
    same = {(r.loss, r.train, r.category): r for r in plan(lambda_spec)}
    for run in plan(ratio_spec):
        twin = same.get((run.loss, run.train, run.category))
        target = runs / run.folder / CHECKPOINT_FILE
        source = runs / twin.folder / CHECKPOINT_FILE if twin is not None else None
        if source is not None and source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def run_demo(data_root: str | Path = "data/demo", runs: str | Path = "runs/demo",
             out: str | Path = "analysis_results/mechanism", plan_: DemoPlan = DemoPlan(),
             device: torch.device | str = "cpu", cache_dir: Path | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> DemoOutcome:
    """Data → sweeps → report. Returns where everything went and the wall time."""
    start = time.perf_counter()
    data_root, runs = Path(data_root), Path(runs)
    for folder in (out, runs) if data_root.is_dir() else (out, runs, data_root):
        check_output_folder(folder)    # before minutes of data generation and training
    _ensure_data(data_root, plan_, log)
    train = TrainConfig(epochs=plan_.epochs, precision=plan_.precision)
    tail = TailLossConfig(tail_weight=plan_.tail_weight, top_k_ratio=plan_.top_k_ratio)
    common = dict(data_root=data_root, categories=(plan_.category,), seeds=plan_.seeds, train=train)
    lambda_spec = SweepSpec(param="tail_weight", values=plan_.lambdas, loss=tail, **common)
    ratio_spec = SweepSpec(param="tail_top_k_ratio", values=plan_.ratios, loss=tail, **common)
    control_spec = SweepSpec(param="tail_top_k_ratio", values=(plan_.top_k_ratio,),
                             loss=replace(tail, selection="random"), **common)
    for name, spec in (("λ sweep", lambda_spec), ("r sweep", ratio_spec), ("random-k control", control_spec)):
        if spec is ratio_spec:
            _link_shared_run(lambda_spec, ratio_spec, runs)
        log(f"{name}: {spec.param} = {', '.join(f'{v:g}' for v in spec.values)} "
            f"({spec.loss.selection} selection, {plan_.epochs} epochs, seeds {list(plan_.seeds)})")
        run_sweep(spec, runs, device=device, cache_dir=cache_dir, progress=progress,
                  on_run=lambda o: log(f"  {o.run.folder}: {o.status}"))
    by_value = {run.value: runs / run.folder / CHECKPOINT_FILE
                for run in plan(lambda_spec) if run.seed == plan_.seeds[0]}
    log("report: analyses, observed effect, figures")
    report = build_report(by_value[plan_.tail_weight], out, baseline_ckpt=by_value[0.0], sweeps=[runs],
                          device=device, settings=AnalysisSettings(n_boot=plan_.n_boot),
                          cache_dir=cache_dir, progress=progress, log=log)
    return DemoOutcome(report, runs, time.perf_counter() - start)
