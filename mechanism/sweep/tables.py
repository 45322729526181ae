"""A sweep folder's tables: ``results.csv`` built from its run records, the summary over seeds,
and the merge of shards' ``results.csv`` files from separate machines.

``results.csv`` has the columns of ``mechanism.sweep.results.COLUMNS`` first (the format its
readers expect), then ``EXTRA_COLUMNS``: ``k`` and ``n_patches`` of the run's grid, ``setup`` and
``data`` (12-hex digests of what must not differ within one sweep folder) and ``folder`` (the
run's folder, relative to the sweep folder). Rows are sorted by category, param, selection,
value, seed. ``summary.md`` / ``summary.csv`` give each metric's mean ± sample std over seeds per
value (``summarize_sweep``), one table per (category, param, selection).

One sweep folder holds one setup: every run shares the backbone, flow, training settings (seed
aside) and image score; the runs of a category share its training and test images; the runs of
one (category, param, selection) share the loss setting that is not swept. Tables that would mix
them are refused, never written.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mechanism.errors import MechanismError
from mechanism.eval.metrics.detection import METRIC_LABELS
from mechanism.io.atomic import write_text
from mechanism.io.text import csv_text, markdown_table, read_csv
from mechanism.io.transaction import check_output_folder, check_own_folder, output_folder
from mechanism.sweep.results import (COLUMNS, METRICS, RESULTS_FILE, SWEPT_COLUMN, SweepRun,
                                     read_results_file, read_sweep_results, summarize_sweep)

EXTRA_COLUMNS = ("k", "n_patches", "setup", "data", "folder")
HEADER = (*COLUMNS, *EXTRA_COLUMNS)
KEY = ("category", "param", "value", "selection", "seed")  # one run of a sweep
FIXED_COLUMN = {"tail_weight": "top_k_ratio", "tail_top_k_ratio": "tail_weight"}
"""Swept parameter → the column of the loss setting it leaves fixed."""
SUMMARY_MD, SUMMARY_CSV = "summary.md", "summary.csv"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def key_columns(config: dict, folder: str) -> dict[str, str]:
    """The columns a run's configuration fixes (all but metrics, times and grid).

    ``config`` is a run's plain-typed configuration (``SweepRunSpec.config``; a record's, as
    ``sweep.run`` reads it, in ``canonical_config`` form).
    """
    loss, train = config["loss"], config["train"]
    setup = {"backbone": config["backbone"], "flow": config["flow"], "image_score": config["image_score"],
             "map_score": config["map_score"],
             "train": {k: v for k, v in train.items() if k != "seed"}}
    return {"param": config["param"], "value": f"{loss[SWEPT_COLUMN[config['param']]]:g}",
            "tail_weight": str(float(loss["tail_weight"])), "top_k_ratio": str(float(loss["top_k_ratio"])),
            "selection": loss["selection"], "seed": str(train["seed"]), "category": config["category"],
            "setup": _digest(setup), "data": _digest(config["data"]), "folder": folder}


def record_row(record: dict, folder: str) -> dict[str, str]:
    """The ``results.csv`` row of a finished run's record (its ``metrics.json``)."""
    measured = {c: str(record[c]) for c in (*METRICS, "train_seconds", "k", "n_patches")}
    return {**key_columns(record["config"], folder), **measured}


def check_one_setup(rows: list[dict[str, str]], where: str) -> None:
    """Refuse rows that cannot belong to one sweep folder (see the module docstring).

    Only the columns of ``key_columns`` are read, so planned runs can be checked too.
    """
    rules = (("setup", lambda r: (), "backbone, flow, training settings (seed aside), map or image score"),
             ("data", lambda r: (r["category"],), "training or test images"),
             (None, lambda r: (r["category"], r["param"], r["selection"]), "the loss setting not swept"))
    unknown = [row for row in rows if row["param"] not in FIXED_COLUMN]
    if unknown:
        raise MechanismError(f"{where}: run {unknown[0]['folder']} sweeps the unknown parameter "
                             f"{unknown[0]['param']!r}")
    for column, group, what in rules:
        first: dict[tuple, dict[str, str]] = {}
        for row in rows:
            col = column or FIXED_COLUMN[row["param"]]
            other = first.setdefault(group(row), row)
            if other[col] != row[col]:
                raise MechanismError(
                    f"{where}: runs {other['folder']} and {row['folder']} differ in {what} "
                    f"({col} {other[col]} ≠ {row[col]}); one sweep folder holds one setup: "
                    f"use another output folder")


def combine(labelled: list[tuple[str, dict[str, str]]], where: str) -> list[dict[str, str]]:
    """Rows of several sources (each labelled for messages), sorted, duplicates collapsed.

    Raises:
        MechanismError: one run (``KEY``) listed twice with different fields, or rows of
            different setups (``check_one_setup``).
    """
    kept: dict[tuple, tuple[str, dict[str, str]]] = {}
    for label, row in labelled:
        key = tuple(row[c] for c in KEY)
        if key in kept and kept[key][1] != row:
            run = ", ".join(f"{c} {v}" for c, v in zip(KEY, key))
            differ = [c for c in HEADER if kept[key][1].get(c) != row.get(c)]
            raise MechanismError(f"{where}: {kept[key][0]} and {label} both hold the run ({run}) "
                                 f"with different {', '.join(differ)}")
        kept.setdefault(key, (label, row))
    rows = [row for _, row in kept.values()]
    check_one_setup(rows, where)
    return sorted(rows, key=lambda r: (r["category"], r["param"], r["selection"],
                                       float(r[SWEPT_COLUMN[r["param"]]]), int(r["seed"])))


def _groups(runs: list[SweepRun]) -> list[tuple[SweepRun, dict]]:
    """Per (category, param, selection): its first run and ``summarize_sweep``'s table."""
    firsts: dict[tuple, SweepRun] = {}
    for run in runs:
        firsts.setdefault((run.category, run.param, run.selection), run)
    return [(first, summarize_sweep(runs, first.param, first.category, first.selection))
            for _, first in sorted(firsts.items(), key=lambda kv: kv[0])]


def summary_markdown(runs: list[SweepRun]) -> str:
    """Mean ± std over seeds per value, in percent, one table per (category, param, selection)."""
    parts = ["# Sweep summary", "",
             "Test metrics per value: mean ± sample std over training seeds (n = seeds), in percent."]
    if not runs:
        parts += ["", "No finished runs yet."]
    for first, table in _groups(runs):
        fixed = FIXED_COLUMN[first.param]
        parts += ["", f"## {first.category}: {first.param}, selection {first.selection}, "
                      f"{fixed} = {getattr(first, fixed):g}", "",
                  markdown_table([first.param, *(METRIC_LABELS[m] for m in METRICS)],
                                 [[f"{value:g}", *(s[m].format_percent() for m in METRICS)]
                                  for value, s in table.items()])]
    return "\n".join(parts) + "\n"


def _summary_rows(runs: list[SweepRun]) -> list[dict]:
    rows = []
    for first, table in _groups(runs):
        for value, s in table.items():
            row = {"category": first.category, "param": first.param, "selection": first.selection,
                   "value": f"{value:g}", "n": s[METRICS[0]].n}
            for m in METRICS:
                row[f"{m}_mean"] = s[m].mean
                row[f"{m}_std"] = "" if s[m].std is None else s[m].std
            rows.append(row)
    return rows


@dataclass(frozen=True)
class SweepTables:
    """The files ``write_tables`` wrote."""
    results: Path       # results.csv
    summary_md: Path
    summary_csv: Path
    n_runs: int         # rows of results.csv
    summary: str        # summary.md's text


TABLE_FILES = (RESULTS_FILE, SUMMARY_MD, SUMMARY_CSV)


def write_tables(rows: list[dict[str, str]], results: Path, summary_md: Path,
                 summary_csv: Path) -> SweepTables:
    """Write ``results`` (rows as given), then ``summary_md`` and ``summary_csv`` from it, each
    atomically (the paths a transaction stages for ``TABLE_FILES``)."""
    write_text(results, csv_text(rows, HEADER, "\n"))
    runs = read_results_file(results)
    summary_fields = ("category", "param", "selection", "value", "n",
                      *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")))
    text = summary_markdown(runs)
    return SweepTables(results, write_text(summary_md, text),
                       write_text(summary_csv, csv_text(_summary_rows(runs), summary_fields, "\n")),
                       len(runs), text)


def _read_rows(source: Path) -> list[tuple[str, dict[str, str]]]:
    """Labelled rows of a sweep folder's (or a given) ``results.csv``, validated."""
    folder = source.parent if source.is_file() else source
    if source.is_file() and source.name != RESULTS_FILE:
        raise MechanismError(f"{source}: expected a sweep folder or its {RESULTS_FILE}")
    read_sweep_results(folder)   # validates every field
    path = folder / RESULTS_FILE
    header, rows = read_csv(path, "sweep results")
    if tuple(header) != HEADER:
        raise MechanismError(f"{path} has the columns {','.join(header)}; "
                             f"expected {','.join(HEADER)} (written by mechanism sweep)")
    return rows


def merge_results(sources: list[str | Path], out: str | Path) -> SweepTables:
    """Merge shards' ``results.csv`` (sweep folders or the files themselves) into ``out``.

    Writes ``<out>/results.csv``, ``summary.md`` and ``summary.csv``, replacing an earlier merge
    in ``out`` as one transaction. A run listed identically in several sources is kept once.
    Merge into a folder of its own (a source or a sweep folder is refused): a later ``mechanism sweep``
    writing into ``out`` rebuilds ``results.csv`` from the run folders found there.

    Raises:
        MechanismError: no sources, ``out`` a source or holding sub-folders, an unreadable source, other columns than ``HEADER``, one run
            with different numbers in two sources, or sources of different setups.
    """
    if not sources:
        raise MechanismError("nothing to merge: give the shards' sweep folders or results.csv files")
    out = check_output_folder(out)
    folders = {(p.parent if p.is_file() else p).resolve() for p in map(Path, sources)}
    if out.resolve() in folders:
        raise MechanismError(f"--out {out} is one of the sources: merge into a folder of its own")
    if out.is_dir() and any(p.is_dir() for p in out.iterdir()):
        raise MechanismError(f"{out} holds sub-folders (a sweep's runs?), not only merged tables: "
                             "merge into a folder of its own")
    check_own_folder(out, TABLE_FILES, "a merged sweep folder")
    labelled = [row for source in sources for row in _read_rows(Path(source))]
    runs = combine(labelled, "merge")
    with output_folder(out, keep_existing=False) as stage:
        staged = write_tables(runs, *(stage / name for name in TABLE_FILES))
    return SweepTables(out / staged.results.name, out / staged.summary_md.name,
                       out / staged.summary_csv.name, staged.n_runs, staged.summary)
