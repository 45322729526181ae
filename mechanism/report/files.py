"""Write an analysis result as ``<name>.json``, ``<name>.csv`` and ``<name>.md``, each atomically,
and read the JSON files of a results folder back into result objects."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol

from mechanism.errors import MechanismError

TABLES = "tables"   # subfolder of an analysis output folder holding <H>.{json,csv,md}


class TabularResult(Protocol):
    """What every analyzer result offers."""

    def to_dict(self) -> dict: ...
    def csv_rows(self) -> list[dict]: ...
    def markdown(self) -> str: ...


def _csv_text(rows: list[dict]) -> str:
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_result(result: TabularResult, folder: str | Path, name: str) -> list[Path]:
    """Write the three files into ``folder`` (created if missing); returns their paths."""
    from mechanism.io.atomic import write_text
    folder = Path(folder)
    return [write_text(folder / f"{name}.json", json.dumps(result.to_dict(), indent=2, default=str) + "\n"),
            write_text(folder / f"{name}.csv", _csv_text(result.csv_rows())),
            write_text(folder / f"{name}.md", result.markdown().rstrip() + "\n")]


def _result_classes() -> dict[str, type]:
    from mechanism.analyzers.h1_edge import H1Result
    from mechanism.analyzers.h3_gradient import H3Result
    from mechanism.analyzers.h4_dilution import H4Result
    from mechanism.analyzers.h7_calibration import H7Result
    return {"H1": H1Result, "H3": H3Result, "H4": H4Result, "H7": H7Result}


def read_result(path: str | Path, name: str):
    """The ``name`` (``"H1"``, ``"H3"``, ``"H4"`` or ``"H7"``) result object stored at ``path``.

    Raises:
        MechanismError: unreadable file, invalid JSON, or JSON that is not a ``name`` result.
    """
    path = Path(path)
    cls = _result_classes()[name]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise MechanismError(f"cannot read {path} ({e})") from None
    except json.JSONDecodeError as e:
        raise MechanismError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("hypothesis", name) != name:
        raise MechanismError(f"{path} is not an {name} result written by mechanism analyze")
    try:
        return cls.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise MechanismError(f"{path} is not an {name} result written by mechanism analyze "
                             f"({detail})") from None


def read_results(folder: str | Path) -> dict[str, object]:
    """Every result stored in ``<folder>/tables/{H1,H3,H4,H7}.json`` by ``mechanism analyze``,
    by hypothesis name (those present).

    Raises:
        MechanismError: if none of the four files exists, or one is corrupt or foreign.
    """
    tables = Path(folder) / TABLES
    paths = {name: tables / f"{name}.json" for name in _result_classes()}
    present = {name: path for name, path in paths.items() if path.is_file()}
    if not present:
        raise MechanismError(f"no result tables ({', '.join(f'{n}.json' for n in paths)}) in "
                             f"{tables}: run mechanism analyze --out {folder} first")
    return {name: read_result(path, name) for name, path in present.items()}
