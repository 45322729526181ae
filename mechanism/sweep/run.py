"""Training sweeps: one Tail-Aware Loss setting over values × seeds × categories (SPEC §6).

Folder layout of a sweep ``out``::

    out/<category>/<param>=<value>-<selection>/seed<seed>/
        model.pt          checkpoint, written atomically once training finished
        model.log.csv     its per-epoch log
        metrics.json      test metrics + the run's exact configuration, written last, atomically
    out/results.csv, out/summary.md, out/summary.csv     (see mechanism.sweep.files)
    out/manifest.json     (a shard writes manifest-shard<i>of<n>.json)

Resume: a run whose ``metrics.json`` matches its configuration is skipped; a checkpoint without
metrics (killed during evaluation) is evaluated if its configuration matches, else retrained; a
run killed during training left no checkpoint and is trained again.

Shards: shard i of n (1-based, 1 ≤ i ≤ n) takes every n-th run of the plan, starting at the
i-th, so the n shards of one sweep run each planned run exactly once. Shards may write into one
shared folder (each rebuilds ``results.csv`` from every finished run folder in it) or into
separate folders, joined with ``mechanism.sweep.files.merge_results``.

Features: the backbone runs once per data set; every later run reads its features from the
feature cache. Without a cache (``cache_dir=None``) the sweep caches them in a temporary folder
deleted at the end, and the persistent cache is neither read nor written.
"""
from __future__ import annotations

import contextlib
import json
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import torch
from tqdm.auto import tqdm

from mechanism.io.atomic import prepare_output
from mechanism.backbone.model import BackboneConfig
from mechanism.train.checkpoint import Checkpoint, load_checkpoint
from mechanism.data.mvtec import fingerprint, read_split
from mechanism.eval.detector import load_detector
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.eval.evaluate import evaluate_detector, save_summary
from mechanism.flow import FlowConfig
from mechanism.io.hashing import file_sha256
from mechanism.train.loss import TailLossConfig, tail_k
from mechanism.io.manifest import build_manifest, write_manifest
from mechanism.eval.scoring import DEFAULT_IMAGE_SCORE, DEFAULT_MAP_SCORE, check_scoring
from mechanism.sweep.files import SweepTables, check_one_setup, combine, key_columns, record_row, write_tables
from mechanism.sweep.results import RESULTS_FILE, SWEPT_COLUMN
from mechanism.train.fit import train_detector
from mechanism.train.config import TrainConfig

RUN_FORMAT = "tailflow-mechanism/sweep-run"   # "format" of a metrics.json
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "model.pt"
T = TypeVar("T")


@dataclass(frozen=True)
class SweepRunSpec:
    """One run of a sweep: the exact configuration it trains and evaluates."""
    category: str
    param: str                  # "tail_weight" or "tail_top_k_ratio"
    loss: TailLossConfig        # holds the swept value
    backbone: BackboneConfig
    flow: FlowConfig
    train: TrainConfig          # holds the run's seed
    image_score: str
    map_score: str

    @property
    def value(self) -> float:
        """The swept setting's value (λ or r)."""
        return getattr(self.loss, SWEPT_COLUMN[self.param])

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def folder(self) -> str:
        """``<category>/<param>=<value>-<selection>/seed<seed>`` (value with ``:g``), relative
        to the sweep folder."""
        return f"{self.category}/{self.param}={self.value:g}-{self.loss.selection}/seed{self.seed}"

    def config(self, data: dict[str, str]) -> dict:
        """Plain-typed configuration, as recorded in ``metrics.json``; ``data`` holds the
        category's training and test fingerprints."""
        return {"category": self.category, "param": self.param, "backbone": self.backbone.to_dict(),
                "flow": self.flow.to_dict(), "loss": self.loss.to_dict(), "train": self.train.to_dict(),
                "map_score": self.map_score, "image_score": self.image_score, "data": data}


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``param`` over ``values`` × ``seeds`` on each of ``categories``.

    ``loss`` gives the selection and the setting that is not swept (its swept field is replaced
    per run); ``train``'s seed is replaced by each run's seed. Categories, values and seeds are
    kept sorted, so the plan does not depend on the order they were given in.

    Raises:
        MechanismError: unknown param, map score or image score; no or repeated categories, values or
            seeds (values count as equal to 6 significant digits, as in folder names); λ outside
            [0, 1]; r outside (0, 1]; a seed that is not an integer ≥ 0.
    """
    data_root: Path
    categories: tuple[str, ...]
    param: str                            # "tail_weight" (λ) or "tail_top_k_ratio" (r)
    values: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    loss: TailLossConfig = TailLossConfig()
    backbone: BackboneConfig = BackboneConfig()
    flow: FlowConfig = FlowConfig()
    train: TrainConfig = TrainConfig()
    image_score: str = DEFAULT_IMAGE_SCORE  # one of mechanism.eval.scoring.IMAGE_SCORE_METHODS
    map_score: str = DEFAULT_MAP_SCORE      # one of mechanism.flow.PATCH_SCORES

    def __post_init__(self):
        if self.param not in SWEPT_COLUMN:
            raise MechanismError(f"unknown swept parameter {self.param!r}: use one of "
                                 f"{', '.join(SWEPT_COLUMN)}")
        check_scoring(self.map_score, self.image_score)
        values = tuple(float(v) for v in self.values)
        for v in values:
            self.run_loss(v)                  # range check of λ or r
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise MechanismError(f"seeds must be integers ≥ 0, got {list(self.seeds)}")
        for what, names in (("category", list(self.categories)), ("value", [f"{v:g}" for v in values]),
                            ("seed", [str(s) for s in self.seeds])):
            if not names or not all(names):
                raise MechanismError(f"a sweep needs at least one {what}, and no empty one")
            repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
            if repeated is not None:
                raise MechanismError(f"the sweep lists {what} {repeated} twice")
        object.__setattr__(self, "data_root", Path(self.data_root))
        object.__setattr__(self, "categories", tuple(sorted(self.categories)))
        object.__setattr__(self, "values", tuple(sorted(values)))
        object.__setattr__(self, "seeds", tuple(sorted(self.seeds)))

    def run_loss(self, value: float) -> TailLossConfig:
        """``loss`` with the swept setting at ``value`` (validated)."""
        return replace(self.loss, **{SWEPT_COLUMN[self.param]: value})

    def to_dict(self) -> dict:
        """Plain types, for the manifest."""
        return {"data_root": str(self.data_root), "categories": list(self.categories),
                "param": self.param, "values": list(self.values), "seeds": list(self.seeds),
                "loss": self.loss.to_dict(), "backbone": self.backbone.to_dict(),
                "flow": self.flow.to_dict(), "train": self.train.to_dict(),
                "map_score": self.map_score, "image_score": self.image_score}


def plan(spec: SweepSpec) -> list[SweepRunSpec]:
    """Every run of ``spec``, ordered by category, value, seed."""
    return [SweepRunSpec(category, spec.param, spec.run_loss(value), spec.backbone, spec.flow,
                         replace(spec.train, seed=seed), spec.image_score, spec.map_score)
            for category in spec.categories for value in spec.values for seed in spec.seeds]


def _check_shard(index: int, count: int) -> None:
    if count < 1 or not 1 <= index <= count:
        raise MechanismError(f"shard {index}/{count} does not exist: use i/n with 1 ≤ i ≤ n")


def shard(runs: Sequence[T], index: int, count: int) -> list[T]:
    """Shard ``index`` of ``count`` (1-based, 1 ≤ index ≤ count): every count-th run, starting
    at the index-th. Shards 1..count are disjoint, together they are ``runs``, and their sizes
    differ by at most one."""
    _check_shard(index, count)
    return list(runs[index - 1::count])


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: shard 2 of 4 (1-based).

    Raises:
        MechanismError: not of the form i/n, or not 1 ≤ i ≤ n.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise MechanismError(f"shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4), got {text!r}")
    index, count = int(match[1]), int(match[2])
    _check_shard(index, count)
    return index, count


@dataclass(frozen=True)
class RunOutcome:
    """What the sweep did with one run."""
    run: SweepRunSpec
    status: str                        # "skipped" (finished before), "evaluated" (a killed run's
                                       # checkpoint), "trained", "retrained" (stale checkpoint replaced)
    folder: Path
    record: dict                       # the run's metrics.json
    features_from_cache: bool | None   # training features came from the cache (None: not trained now)


@dataclass(frozen=True)
class SweepOutcome:
    """The runs of this call (its shard) and the tables over every finished run of the folder."""
    runs: list[RunOutcome]
    tables: SweepTables


def _share(spec: SweepSpec, which: tuple[int, int] | None) -> list[SweepRunSpec]:
    return plan(spec) if which is None else shard(plan(spec), *which)


def _data_identity(data_root: Path, category: str) -> dict[str, str]:
    return {f"{split}_fingerprint": fingerprint(read_split(data_root, category, split))
            for split in ("train", "test")}


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MechanismError(f"cannot read sweep run record {path} ({e})") from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise MechanismError(f"{path} is not a sweep run record")
    return record


def _finished_rows(out: Path) -> list[tuple[str, dict[str, str]]]:
    """(folder, row) of every finished run under ``out``, as found on disk."""
    rows = []
    for path in sorted(out.glob(f"*/*/*/{METRICS_FILE}")):
        folder = path.parent.relative_to(out).as_posix()
        try:
            rows.append((folder, record_row(_read_record(path), folder)))
        except KeyError as e:
            raise MechanismError(f"sweep run record {path} lacks the field {e}") from None
    return rows


def _matches(ckpt: Checkpoint, run: SweepRunSpec, data: dict[str, str]) -> bool:
    """Whether ``ckpt`` was trained exactly as ``run`` on the same training images."""
    return (ckpt.loss == run.loss and ckpt.train == run.train and ckpt.flow == run.flow
            and ckpt.backbone.get("config") == run.backbone.to_dict()
            and ckpt.data.category == run.category
            and ckpt.data.fingerprint == data["train_fingerprint"])


def _run_one(run: SweepRunSpec, folder: Path, data_root: Path, data: dict[str, str],
             device: torch.device, cache_dir: Path | str, progress: bool) -> RunOutcome:
    """Skip, evaluate, or train and evaluate one run; ``metrics.json`` is written last."""
    config = run.config(data)
    record_path, ckpt_path = folder / METRICS_FILE, folder / CHECKPOINT_FILE
    if record_path.is_file():
        record = _read_record(record_path)
        if record.get("config") != config:
            raise MechanismError(f"{folder} holds a finished run of another configuration: delete "
                                 f"it or use another output folder")
        return RunOutcome(run, "skipped", folder, record, None)
    for leftover in folder.glob(".*.tmp*"):   # temporary files of a write killed by a signal
        leftover.unlink()
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.is_file() else None
    if ckpt is None:
        status = "trained"
    else:
        status = "evaluated" if _matches(ckpt, run, data) else "retrained"
    from_cache = None
    if status != "evaluated":
        trained = train_detector(data_root, run.category, ckpt_path, run.backbone, run.flow, run.loss,
                                 run.train, device, cache_dir, progress)
        ckpt, from_cache = load_checkpoint(trained.checkpoint), trained.features_from_cache
    ev = evaluate_detector(load_detector(ckpt, device), data_root, run.category, run.image_score,
                           cache_dir=cache_dir, progress=progress, map_score=run.map_score)
    extra = {"format": RUN_FORMAT, "config": config, "data_root": str(data_root.resolve()),
             "train_seconds": ckpt.summary["train_seconds"], "n_patches": ckpt.n_patches,
             "k": tail_k(ckpt.n_patches, run.loss.top_k_ratio), "checkpoint": CHECKPOINT_FILE,
             "checkpoint_sha256": file_sha256(ckpt_path)}
    save_summary(ev, record_path, extra)
    return RunOutcome(run, status, folder, _read_record(record_path), from_cache)


def run_sweep(spec: SweepSpec, out: str | Path, shard: tuple[int, int] | None = None,
              device: torch.device | str = "cpu", cache_dir: Path | str | None = "default",
              progress: bool = True,
              on_run: Callable[[RunOutcome], None] | None = None) -> SweepOutcome:
    """Train and evaluate this shard's runs of ``spec`` under ``out``, resuming; rebuild the tables.

    Args:
        shard: ``(i, n)``, shard i of n (1-based); ``None``: the whole plan.
        device: a ``torch.device`` or a choice for ``resolve_device`` (auto, cpu, cuda).
        cache_dir: feature cache folder; ``"default"``: ``default_cache_dir()``; ``None``: a
            temporary cache for this call only.
        on_run: called after each run (the CLI prints a line).

    Raises:
        MechanismError: bad data, or an output folder holding runs of another setup (checked
            for the whole plan before anything is trained).
    """
    out = Path(out)
    prepare_output(out / RESULTS_FILE)
    device = resolve_device(device) if isinstance(device, str) else device
    data = {category: _data_identity(spec.data_root, category) for category in spec.categories}
    planned = [key_columns(run.config(data[run.category]), f"{run.folder} of this sweep")
               for run in plan(spec)]
    check_one_setup([row for _, row in _finished_rows(out)] + planned, str(out))
    outcomes = []
    with contextlib.ExitStack() as stack:
        if cache_dir is None:
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sweep-features-")))
        for run in tqdm(_share(spec, shard), desc="sweep", unit="run", disable=not progress):
            outcome = _run_one(run, out / run.folder, spec.data_root, data[run.category], device,
                               cache_dir, progress)
            outcomes.append(outcome)
            if on_run is not None:
                on_run(outcome)
    tables = write_tables(combine(_finished_rows(out), str(out)), out)
    write_manifest(out, build_manifest(
        device, {o.run.folder: o.run.seed for o in outcomes},
        {o.run.folder: {"path": str(o.folder / CHECKPOINT_FILE), "sha256": o.record["checkpoint_sha256"]}
         for o in outcomes},
        {"root": str(spec.data_root), **{f"{c}/{k}": v for c, d in data.items() for k, v in d.items()}},
        {"sweep": spec.to_dict(), "shard": None if shard is None else f"{shard[0]}/{shard[1]}"}),
        "manifest.json" if shard is None else f"manifest-shard{shard[0]}of{shard[1]}.json")
    return SweepOutcome(outcomes, tables)
