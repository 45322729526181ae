"""What a study trains (SPEC §7.5), and the worker that trains one shard of it.

A study is categories × seeds × conditions: λ = 0; λ = 0.7 top-k; λ = 0.7 random-k; the r
sweep 1%, 2%, 10%, 100% at λ = 0.7; optionally the λ sweep 0, 0.3, 0.5, 0.7, 0.9, 1. They are
three sweeps (``STUDY_SWEEPS``) over one runs folder. A condition two sweeps share (the r
sweep's r = 2% run is the λ sweep's λ = 0.7 run) is trained once: ``unique_runs`` lists each
training once, the study shards that list over its workers, and ``linked_runs`` names the
folders that then receive a link to the trained checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from mechanism.backbone.features import cached_features
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.data.mvtec import read_split
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.sweep.plan import SweepRunSpec, SweepSpec, plan, shard
from mechanism.sweep.run import RunOutcome, prepare_sweep, run_planned
from mechanism.train.config import TrainConfig
from mechanism.train.loss import TailLossConfig

LAMBDA_SWEEP = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)
STUDY_SWEEPS = ("lambda", "ratio", "control")


@dataclass(frozen=True)
class StudyPlan:
    """The conditions of a study and how long each trains.

    Raises:
        MechanismError: no categories or seeds, a repeated one, an r sweep without the
            tail-aware r, or a training setting ``TrainConfig`` refuses.
    """
    categories: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)          # training seeds of every condition
    epochs: int = 12
    tail_weight: float = 0.7                    # the tail-aware model's λ
    top_k_ratio: float = 0.02                   # its r (the study's 2%)
    ratios: tuple[float, ...] = (0.01, 0.02, 0.1, 1.0)   # r sweep at tail_weight
    lambda_sweep: bool = False                  # also train LAMBDA_SWEEP at top_k_ratio
    precision: str = TrainConfig().precision    # training arithmetic
    n_boot: int = 1000                          # bootstrap resamples of every interval
    input_size: int | tuple[int, int] = BackboneConfig().input_size   # model input, pixels (h, w)
    layers: tuple[int, ...] = BackboneConfig().layers                 # backbone stages of every run

    def __post_init__(self):
        for what, items in (("category", self.categories), ("seed", self.seeds)):
            if not items:
                raise MechanismError(f"a study needs at least one {what}")
            if len(set(items)) != len(items):
                raise MechanismError(f"the study lists a {what} twice: {list(items)}")
        if self.top_k_ratio not in self.ratios:
            raise MechanismError(f"the study's r sweep must hold its r = {self.top_k_ratio:g}")
        if self.n_boot < 0:
            raise MechanismError(f"bootstrap resamples must be ≥ 0, got {self.n_boot}")
        TrainConfig(epochs=self.epochs, precision=self.precision)   # validates before anything runs
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_size", self.backbone.input_size)   # (S, S) → S

    @property
    def backbone(self) -> BackboneConfig:
        """Every run's backbone: the default one at the plan's input size and stages."""
        return BackboneConfig(layers=self.layers, input_size=self.input_size)

    @property
    def lambdas(self) -> tuple[float, ...]:
        """λ values trained at the tail-aware r: 0 and the tail-aware λ, or the λ sweep."""
        return tuple(sorted({0.0, self.tail_weight, *(LAMBDA_SWEEP if self.lambda_sweep else ())}))

    def to_dict(self) -> dict:
        return {"categories": list(self.categories), "seeds": list(self.seeds), "epochs": self.epochs,
                "tail_weight": self.tail_weight, "top_k_ratio": self.top_k_ratio,
                "ratios": list(self.ratios), "lambdas": list(self.lambdas),
                "precision": self.precision, "n_boot": self.n_boot,
                "input_size": self.backbone.to_dict()["input_size"], "layers": list(self.layers)}


def study_specs(plan_: StudyPlan, data_root: str | Path) -> dict[str, SweepSpec]:
    """The three sweeps of ``plan_`` (``STUDY_SWEEPS``) on ``data_root``."""
    train = TrainConfig(epochs=plan_.epochs, precision=plan_.precision)
    tail = TailLossConfig(tail_weight=plan_.tail_weight, top_k_ratio=plan_.top_k_ratio)
    common = dict(data_root=Path(data_root), categories=plan_.categories, seeds=plan_.seeds, train=train,
                  backbone=plan_.backbone)
    return {"lambda": SweepSpec(param="tail_weight", values=plan_.lambdas, loss=tail, **common),
            "ratio": SweepSpec(param="tail_top_k_ratio", values=plan_.ratios, loss=tail, **common),
            "control": SweepSpec(param="tail_top_k_ratio", values=(plan_.top_k_ratio,),
                                 loss=replace(tail, selection="random"), **common)}


def _training(run: SweepRunSpec) -> tuple:
    return run.category, run.loss, run.train


def unique_runs(specs: dict[str, SweepSpec]) -> list[tuple[str, SweepRunSpec]]:
    """(sweep name, run) of every distinct training, the first sweep that plans it owning it."""
    seen, out = set(), []
    for name, spec in specs.items():
        for run in plan(spec):
            if _training(run) not in seen:
                seen.add(_training(run))
                out.append((name, run))
    return out


def linked_runs(specs: dict[str, SweepSpec]) -> list[tuple[str, str]]:
    """(owner folder, linked folder) of every run another sweep already trains."""
    owner = {_training(run): run.folder for _, run in unique_runs(specs)}
    return [(owner[_training(run)], run.folder) for spec in specs.values() for run in plan(spec)
            if owner[_training(run)] != run.folder]


@dataclass(frozen=True)
class FeatureJob:
    """The backbone's features of one category's train and test images, into the cache."""
    data_root: str
    category: str
    device: str
    cache_dir: str
    backbone: BackboneConfig = BackboneConfig()
    progress: bool = False


def category_features(job: FeatureJob) -> list[str]:
    """Fill the feature cache for ``job``'s category; one line per split."""
    device = resolve_device(job.device)
    backbone = load_backbone(job.backbone, device)
    lines = []
    for split in ("train", "test"):
        samples = read_split(job.data_root, job.category, split)
        got = cached_features(backbone, samples, Path(job.cache_dir), device=device,
                              progress=job.progress)
        lines.append(f"features: {job.category}/{split}, {len(samples)} images"
                     f"{' (cached)' if got.from_cache else ''}")
    return lines


@dataclass(frozen=True)
class ShardJob:
    """One worker's share of a study's trainings (picklable: it crosses process boundaries)."""
    plan: StudyPlan
    data_root: str
    runs: str                       # the study's runs folder
    shard: tuple[int, int]          # (i, n), 1-based
    device: str                     # e.g. "cpu", "cuda:1", "auto" (resolved by the worker)
    cache_dir: str                  # the feature cache folder the workers share
    threads: int | None = None      # CPU threads of this worker (trainings and torch's count; None: as set)
    progress: bool = False          # progress bars (a single worker in the study's process)


def train_shard(job: ShardJob, on_run: Callable[[RunOutcome], None] | None = None) -> list[str]:
    """Train and evaluate shard i of n of the study's distinct runs; the run folders it
    finished (trained, evaluated or found finished). ``on_run`` is called after each."""
    if job.threads is not None:
        os.environ["MECHANISM_THREADS"] = str(job.threads)   # the training's CpuThreads
        torch.set_num_threads(job.threads)
    specs = study_specs(job.plan, job.data_root)
    mine = shard(unique_runs(specs), *job.shard)
    done: list[RunOutcome] = []
    for name, spec in specs.items():
        data = prepare_sweep(spec, job.runs)
        runs = [run for owner, run in mine if owner == name]
        done += run_planned(runs, Path(job.runs), spec.data_root, data, resolve_device(job.device),
                            Path(job.cache_dir), job.progress, on_run)
    return [o.run.folder for o in done]
