"""``mechanism demo``: the demo set's small study in one call (SPEC §7.5's conditions, one category).

Generates the demo data if missing, then runs ``mechanism.pipelines.study.run_study`` on one
category with three training seeds and no λ sweep: λ = 0, the tail-aware model (λ = 0.7, r = 2%),
its random-k control and the r sweep (1%, 2%, 10%, 100%). Every step resumes: finished runs are
skipped, so an interrupted demo continues where it stopped.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from mechanism.data.demo import DEMO_CATEGORIES, generate_demo
from mechanism.data.mvtec import category_folder
from mechanism.device import THREADS_ENV, resolve_device, threads_choice, usable_cpus
from mechanism.errors import MechanismError
from mechanism.io.transaction import check_output_folder
from mechanism.pipelines.study import StudyOutcome, run_study
from mechanism.pipelines.study_plan import StudyPlan
from mechanism.pipelines.workers import Launch
from mechanism.train.config import TrainConfig


def default_workers(device_choice: str) -> int:
    """The demo's trainings at once: on CUDA one per GPU, at most 2 (1 for a named
    ``cuda:N``); on a CPU one per 2 usable CPUs (a training keeps at most 2 threads busy at
    its batch of 16), at least 1 and at most 2 (each worker holds about 1 GiB), and 1 when
    ``--threads N`` / ``MECHANISM_THREADS=N`` fixed the training's thread count."""
    device = resolve_device(device_choice)
    if device.type == "cuda":
        return 1 if device.index is not None else max(1, min(2, torch.cuda.device_count()))
    if isinstance(threads_choice(os.environ.get(THREADS_ENV)), int):
        return 1
    return max(1, min(2, len(usable_cpus()) // 2))


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
    ratios: tuple[float, ...] = (0.01, 0.02, 0.1, 1.0)  # r sweep at λ = 0.7
    seeds: tuple[int, ...] = (0, 1, 2)                  # training seeds of every condition
    epochs: int = 12
    precision: str = TrainConfig().precision            # training arithmetic (TrainConfig)
    n_boot: int = 1000
    data: DemoData = field(default_factory=DemoData)

    def __post_init__(self):
        if self.category not in DEMO_CATEGORIES:
            raise MechanismError(f"unknown demo category {self.category!r}: use one of "
                                 f"{', '.join(DEMO_CATEGORIES)}")
        self.study()                                    # validates before anything is written

    def study(self) -> StudyPlan:
        return StudyPlan(categories=(self.category,), seeds=self.seeds, epochs=self.epochs,
                         ratios=self.ratios, precision=self.precision, n_boot=self.n_boot)


QUICK = DemoPlan(ratios=(0.02, 0.1), seeds=(0, 1), epochs=2, n_boot=100,
                 data=DemoData(n_train=24, n_test_good=6, n_test_defect=10))
"""A smoke run of every step (about a minute on 2 CPU cores); its numbers mean nothing."""


def _ensure_data(root: Path, plan_: DemoPlan, log: Callable[[str], None]) -> None:
    if root.is_dir() and any(root.iterdir()):
        category_folder(root, plan_.category)   # a clear error if the category is missing
        log(f"data: using {root}")
        return
    log(f"data: generating the demo set in {root}")
    d = plan_.data
    generate_demo(root, categories=(plan_.category,), n_train=d.n_train, n_test_good=d.n_test_good,
                  n_test_defect=d.n_test_defect)


def run_demo(data_root: str | Path = "data/demo", runs: str | Path = "runs/demo",
             out: str | Path = "analysis_results/demo", plan_: DemoPlan = DemoPlan(),
             device: torch.device | str = "cpu", cache_dir: Path | None = None, progress: bool = True,
             launch: Launch = Launch(), log: Callable[[str], None] = print) -> StudyOutcome:
    """Data → the study of one category. Returns the study's outcome (report, contrasts, wall time)."""
    data_root, runs = Path(data_root), Path(runs)
    for folder in (out, runs) if data_root.is_dir() else (out, runs, data_root):
        check_output_folder(folder)    # before minutes of data generation and training
    start = time.perf_counter()
    _ensure_data(data_root, plan_, log)
    outcome = run_study(data_root, out, runs, plan_.study(), device, cache_dir, launch, progress, log)
    return replace(outcome, seconds=time.perf_counter() - start)
