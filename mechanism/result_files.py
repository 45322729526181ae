"""Write an analysis result as ``<name>.json``, ``<name>.csv`` and ``<name>.md``, each atomically."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol


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
    from mechanism.atomic import write_text
    folder = Path(folder)
    return [write_text(folder / f"{name}.json", json.dumps(result.to_dict(), indent=2, default=str) + "\n"),
            write_text(folder / f"{name}.csv", _csv_text(result.csv_rows())),
            write_text(folder / f"{name}.md", result.markdown().rstrip() + "\n")]
