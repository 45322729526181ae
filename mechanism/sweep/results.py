"""Read a sweep's ``results.csv`` and summarise its metrics over training seeds.

The sweep command writes one row per trained checkpoint, with at least these columns::

    param,value,tail_weight,top_k_ratio,selection,seed,category,
    image_auroc,pixel_auroc,pixel_ap,aupro,train_seconds

``param`` names the swept setting (``tail_top_k_ratio`` or ``tail_weight``), ``value`` its value
as text; metrics are fractions in [0, 1] (not percent), ``train_seconds`` wall-clock seconds.
Every field of every row must be present and valid: a half-written row is an error, never a
silently skipped run. Extra columns are allowed; of them only ``folder`` (the run's folder,
relative to the sweep folder) is read.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mechanism.errors import MechanismError
from mechanism.io.text import read_csv
from mechanism.io.transaction import recover_files
from mechanism.stats.summary import MetricSummary

RESULTS_FILE = "results.csv"
METRICS = ("image_auroc", "pixel_auroc", "pixel_ap", "aupro")
COLUMNS = ("param", "value", "tail_weight", "top_k_ratio", "selection", "seed", "category",
           *METRICS, "train_seconds")
SWEPT_COLUMN = {"tail_top_k_ratio": "top_k_ratio", "tail_weight": "tail_weight"}
"""Swept parameter name → the column that holds its value as a number."""


@dataclass(frozen=True)
class SweepRun:
    """One trained checkpoint of a sweep and its test metrics."""
    param: str             # swept parameter, e.g. "tail_top_k_ratio"
    value: str             # its value, as written
    tail_weight: float     # λ
    top_k_ratio: float     # r
    selection: str         # "topk" or "random"
    seed: int              # training seed
    category: str
    image_auroc: float     # fractions in [0, 1]
    pixel_auroc: float
    pixel_ap: float
    aupro: float
    train_seconds: float   # wall-clock seconds
    folder: str = ""       # the run's folder relative to the sweep folder ("" when not listed)


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MechanismError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise MechanismError(f"{where}: {column} is {text!r}, not a finite number")
    return value


def parse_row(row: dict[str, str], where: str) -> SweepRun:
    """One results.csv row as a ``SweepRun``, validated (``where`` names it in errors)."""
    empty = [c for c in COLUMNS if row.get(c) in (None, "")]
    if empty:
        raise MechanismError(f"{where}: empty field {empty[0]}")
    numbers = {c: _number(row[c], c, where)
               for c in ("tail_weight", "top_k_ratio", *METRICS, "train_seconds")}
    for metric in METRICS:
        if not 0.0 <= numbers[metric] <= 1.0:
            raise MechanismError(f"{where}: {metric} {row[metric]} lies outside [0, 1] "
                                 f"(metrics are fractions, not percent)")
    if numbers["train_seconds"] < 0:
        raise MechanismError(f"{where}: train_seconds {row['train_seconds']} is negative")
    try:
        seed = int(row["seed"])
    except ValueError:
        raise MechanismError(f"{where}: seed {row['seed']!r} is not an integer") from None
    return SweepRun(param=row["param"], value=row["value"], selection=row["selection"], seed=seed,
                    category=row["category"], folder=row.get("folder") or "", **numbers)


def read_sweep_results(folder: str | Path) -> list[SweepRun]:
    """Every run listed in ``<folder>/results.csv``, in file order (see ``read_results_file``)."""
    return read_results_file(Path(folder) / RESULTS_FILE)


def read_results_file(path: Path) -> list[SweepRun]:
    """Every run listed in the results table ``path``, in file order.

    Raises:
        MechanismError: missing or unreadable file, missing columns, or an invalid field
            (named with its line number).
    """
    recover_files(path)   # a sweep killed while committing its tables finishes first
    if not path.is_file():
        raise MechanismError(f"sweep results {path} do not exist: run the sweep first")
    header, rows = read_csv(path, "sweep results")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise MechanismError(f"{path} lacks the column(s) {', '.join(missing)}")
    return [parse_row(row, where) for where, row in rows]


def summarize_sweep(runs: list[SweepRun], param: str, category: str,
                    selection: str = "topk") -> dict[float, dict[str, MetricSummary]]:
    """Per value of the swept ``param`` (ascending), each metric of ``METRICS`` over seeds.

    Only runs with this ``param``, ``selection`` and ``category`` count.

    Raises:
        MechanismError: unknown ``param``, no matching run, or two runs of one value and seed.
    """
    if param not in SWEPT_COLUMN:
        raise MechanismError(f"unknown swept parameter {param!r}: use one of {', '.join(SWEPT_COLUMN)}")
    column = SWEPT_COLUMN[param]
    groups: dict[float, dict[int, SweepRun]] = defaultdict(dict)
    for run in runs:
        if (run.param, run.selection, run.category) != (param, selection, category):
            continue
        value = getattr(run, column)
        if run.seed in groups[value]:
            raise MechanismError(f"sweep lists two runs of {param} = {value:g}, seed {run.seed}, "
                                 f"category {category}, selection {selection}")
        groups[value][run.seed] = run
    if not groups:
        raise MechanismError(f"sweep has no runs with param = {param}, selection = {selection} "
                             f"and category = {category}")
    out = {}
    for value in sorted(groups):
        seeds = list(groups[value].values())
        out[value] = {}
        out[value] = {metric: MetricSummary.of([getattr(r, metric) for r in seeds])
                      for metric in METRICS}
    return out
