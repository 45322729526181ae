"""A result on disk: ``<name>.json`` (its plain data), ``<name>.csv`` and ``<name>.md`` (its
tables), each written atomically; and the JSON files of a results folder read back."""
from __future__ import annotations

import json
from pathlib import Path

from mechanism.analyzers.registry import RESULT_TYPES
from mechanism.errors import MechanismError
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.io.atomic import write_text
from mechanism.io.serialize import from_plain, to_plain
from mechanism.io.text import csv_text
from mechanism.report import tables

TABLES = "tables"   # subfolder of an analysis output folder holding <H>.{json,csv,md}
EFFECTS = ("observed_effect", "random_k_control")   # a report's contrasts, beside the results


def write_result(result, folder: str | Path, name: str) -> list[Path]:
    """Write the three files into ``folder`` (created if missing); returns their paths."""
    folder = Path(folder)
    return [write_text(folder / f"{name}.json", json.dumps(to_plain(result), indent=2) + "\n"),
            write_text(folder / f"{name}.csv", csv_text(tables.csv_rows(result))),
            write_text(folder / f"{name}.md", tables.markdown(result).rstrip() + "\n")]


def read_result(path: str | Path, name: str):
    """The ``name`` (``"H1"``, ``"H3"``, ``"H4"`` or ``"H7"``) result object stored at ``path``.

    Raises:
        MechanismError: unreadable file, invalid JSON, or JSON that is not a ``name`` result.
    """
    return _read_plain(Path(path), RESULT_TYPES[name], name, f"an {name} result written by mechanism analyze")


def _read_plain(path: Path, cls: type, name: str, what: str):
    """``cls`` rebuilt from the JSON at ``path`` (its ``"hypothesis"`` key, if any, must be
    ``name``); a one-line MechanismError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise MechanismError(f"cannot read {path} ({e})") from None
    except json.JSONDecodeError as e:
        raise MechanismError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("hypothesis", name) != name:
        raise MechanismError(f"{path} is not {what}")
    try:
        return from_plain(cls, data, name)
    except (TypeError, ValueError) as e:
        raise MechanismError(f"{path} is not {what} ({e})") from None


def read_effects(folder: str | Path) -> dict[str, ObservedEffect]:
    """The headline and the random-k control stored in ``<folder>/tables`` by ``mechanism
    report`` (``EFFECTS`` keys, those present).

    Raises:
        MechanismError: a file that is corrupt or not an observed effect.
    """
    folder_tables = Path(folder) / TABLES
    return {name: _read_plain(folder_tables / f"{name}.json", ObservedEffect, name,
                              "an observed effect written by mechanism report")
            for name in EFFECTS if (folder_tables / f"{name}.json").is_file()}


def read_results(folder: str | Path) -> dict[str, object]:
    """Every result stored in ``<folder>/tables/{H1,H3,H4,H7}.json`` by ``mechanism analyze``,
    by hypothesis name (those present).

    Raises:
        MechanismError: if none of the four files exists, or one is corrupt or foreign.
    """
    folder_tables = Path(folder) / TABLES
    paths = {name: folder_tables / f"{name}.json" for name in RESULT_TYPES}
    present = {name: path for name, path in paths.items() if path.is_file()}
    if not present:
        raise MechanismError(f"no result tables ({', '.join(f'{n}.json' for n in paths)}) in "
                             f"{folder_tables}: run mechanism analyze --out {folder} first")
    return {name: read_result(path, name) for name, path in present.items()}
