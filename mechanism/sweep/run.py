"""Running a sweep's plan (``mechanism.sweep.plan``): train and evaluate each run, resuming.

Resume: a run whose ``metrics.json`` matches its configuration is skipped; a checkpoint without
metrics (killed during evaluation) is evaluated if its configuration matches, else retrained; a
run killed during training left no checkpoint and is trained again.

Features: the backbone runs once per data set; every later run reads its features from the
feature cache. Without a cache (``cache_dir=None``) the sweep caches them in a temporary folder
deleted at the end, and no persistent cache is read or written.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from mechanism.backbone.model import load_backbone
from mechanism.data.mvtec import fingerprint, read_split
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.eval.evaluate import evaluate_detector, save_summary
from mechanism.io.atomic import prepare_output, write_text
from mechanism.io.hashing import file_sha256
from mechanism.io.manifest import build_manifest
from mechanism.io.serialize import from_plain
from mechanism.io.transaction import commit_together
from mechanism.sweep.tables import (TABLE_FILES, SweepTables, check_one_setup, combine, key_columns,
                                   record_row, write_tables)
from mechanism.sweep.plan import (CHECKPOINT_FILE, METRICS_FILE, RUN_FORMAT, SweepRunSpec, SweepSpec,
                                  canonical_config, plan, shard)
from mechanism.sweep.results import RESULTS_FILE, parse_row
from mechanism.train.checkpoint import Checkpoint, load_checkpoint
from mechanism.train.fit import train_detector
from mechanism.train.loss import tail_k


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


@dataclass(frozen=True)
class _Measured:
    """The fields of a run record that a sweep reads back besides its configuration."""
    image_auroc: float | None
    pixel_auroc: float | None
    pixel_ap: float | None
    aupro: float | None
    train_seconds: float
    n_patches: int
    k: int
    checkpoint_sha256: str


def read_record(path: str | Path) -> dict:
    """A finished run's ``metrics.json``, its configuration in ``canonical_config`` form.

    Raises:
        MechanismError: unreadable, not JSON, not a run record, or a field that is missing or
            of the wrong type (named with the file).
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MechanismError(f"cannot read sweep run record {path} ({e})") from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise MechanismError(f"{path} is not a sweep run record")
    try:
        measured = from_plain(_Measured, {k: record[k] for k in _Measured.__dataclass_fields__
                                          if k in record}, "record")
        if not 1 <= measured.k <= measured.n_patches:
            raise ValueError(f"record.k: expected 1 ≤ k ≤ n_patches = {measured.n_patches}, "
                             f"got {measured.k}")
        return {**record, "config": canonical_config(record.get("config"))}
    except (ValueError, MechanismError) as e:
        raise MechanismError(f"sweep run record {path}: {e}") from None


def _finished_rows(out: Path) -> list[tuple[str, dict[str, str]]]:
    """(folder, row) of every finished run under ``out``, as found on disk."""
    rows = []
    for path in sorted(out.glob(f"*/*/*/{METRICS_FILE}")):
        folder = path.parent.relative_to(out).as_posix()
        row = record_row(read_record(path), folder)
        parse_row(row, f"sweep run record {path}")     # checked here, where its file is known
        rows.append((folder, row))
    return rows


def _matches(ckpt: Checkpoint, run: SweepRunSpec, data: dict[str, str]) -> bool:
    """Whether ``ckpt`` was trained exactly as ``run`` on the same training images."""
    return (ckpt.loss == run.loss and ckpt.train == run.train and ckpt.flow == run.flow
            and ckpt.backbone.get("config") == run.backbone.to_dict()
            and ckpt.data.category == run.category
            and ckpt.data.fingerprint == data["train_fingerprint"])


def _run_one(run: SweepRunSpec, folder: Path, data_root: Path, data: dict[str, str],
             device: torch.device, cache_dir: Path, progress: bool) -> RunOutcome:
    """Skip, evaluate, or train and evaluate one run; ``metrics.json`` is written last."""
    config = run.config(data)
    record_path, ckpt_path = folder / METRICS_FILE, folder / CHECKPOINT_FILE
    if record_path.is_file():
        record = read_record(record_path)
        if record["config"] != config:
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
    return RunOutcome(run, status, folder, read_record(record_path), from_cache)


def prepare_sweep(spec: SweepSpec, out: str | Path) -> dict[str, dict[str, str]]:
    """Check, before anything is trained, that ``out`` can hold ``spec``'s runs (one setup with
    the runs it holds); returns each category's data identity (training and test fingerprints).

    Raises:
        MechanismError: bad data, or ``out`` holding runs of another setup.
    """
    out = Path(out)
    prepare_output(out / RESULTS_FILE)
    data = {category: _data_identity(spec.data_root, category) for category in spec.categories}
    planned = [key_columns(run.config(data[run.category]), f"{run.folder} of this sweep")
               for run in plan(spec)]
    check_one_setup([row for _, row in _finished_rows(out)] + planned, str(out))
    return data


def run_planned(runs: list[SweepRunSpec], out: Path, data_root: Path, data: dict[str, dict[str, str]],
                device: torch.device, cache_dir: Path, progress: bool = True,
                on_run: Callable[[RunOutcome], None] | None = None) -> list[RunOutcome]:
    """Skip, evaluate or train each of ``runs`` in its folder under ``out`` (``prepare_sweep``
    checked them); ``data``: ``prepare_sweep``'s identities."""
    outcomes = []
    for run in tqdm(runs, desc="sweep", unit="run", disable=not progress):
        outcome = _run_one(run, Path(out) / run.folder, data_root, data[run.category], device,
                           cache_dir, progress)
        outcomes.append(outcome)
        if on_run is not None:
            on_run(outcome)
    return outcomes


def run_sweep(spec: SweepSpec, out: str | Path, shard: tuple[int, int] | None = None,
              device: torch.device | str = "cpu", cache_dir: Path | None = None,
              progress: bool = True,
              on_run: Callable[[RunOutcome], None] | None = None) -> SweepOutcome:
    """Train and evaluate this shard's runs of ``spec`` under ``out``, resuming; rebuild the tables.

    Args:
        shard: ``(i, n)``, shard i of n (1-based); ``None``: the whole plan.
        device: a ``torch.device`` or a choice for ``resolve_device`` (auto, cpu, cuda).
        cache_dir: the feature cache folder; ``None``: no persistent cache (a temporary one for
            this call only, so the backbone still runs once per data set).
        on_run: called after each run (the CLI prints a line).

    Raises:
        MechanismError: bad data, or an output folder holding runs of another setup (checked
            for the whole plan before anything is trained).
    """
    out = Path(out)
    load_backbone(spec.backbone)        # stages and input size fit the network: before any folder
    data = prepare_sweep(spec, out)
    device = resolve_device(device) if isinstance(device, str) else device
    with contextlib.ExitStack() as stack:
        if cache_dir is None:
            cache_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sweep-features-")))
        outcomes = run_planned(_share(spec, shard), out, spec.data_root, data, device, cache_dir,
                               progress, on_run)
    manifest = build_manifest(
        device, {o.run.folder: o.run.seed for o in outcomes},
        {o.run.folder: {"path": str(o.folder / CHECKPOINT_FILE), "sha256": o.record["checkpoint_sha256"]}
         for o in outcomes},
        {"root": str(spec.data_root), **{f"{c}/{k}": v for c, d in data.items() for k, v in d.items()}},
        {"sweep": spec.to_dict(), "shard": None if shard is None else f"{shard[0]}/{shard[1]}"})
    files = [out / name for name in (*TABLE_FILES, "manifest.json" if shard is None
                                     else f"manifest-shard{shard[0]}of{shard[1]}.json")]
    with commit_together(*files, lock="wait") as staged:   # shards sharing out take turns
        tables = write_tables(combine(_finished_rows(out), str(out)), *staged[:3])
        write_text(staged[3], json.dumps(manifest, indent=2) + "\n")
    return SweepOutcome(outcomes, replace(tables, results=files[0], summary_md=files[1],
                                          summary_csv=files[2]))
