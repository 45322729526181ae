"""Plain-text primitives shared by results, tables and figures: markdown tables, p-values,
percentages, yes/no answers and CSV text."""
from __future__ import annotations

import csv
import io
import sys
from typing import Sequence

from mechanism.errors import MechanismError


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; cells are rendered with ``str``.

    >>> print(markdown_table(["measurement", "value"], [["KS p-value", "1e-3"]]))
    | measurement | value |
    |---|---|
    | KS p-value | 1e-3 |
    """
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {len(header)}")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def format_p(p: float) -> str:
    """p-values: 3 significant digits, scientific below 1e-3 (``5.43e-93``); a p that
    underflowed to 0 in double precision is written as a bound (``< 2.2e-308``)."""
    if p == 0:
        return f"< {sys.float_info.min:.1e}"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"


def percent(ratio: float) -> str:
    """A ratio as a percentage with no trailing zeros, ``0.02 → "2%"``."""
    return f"{100 * ratio:g}%"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 category"``, ``"3 categories"`` (``many`` defaults to ``one + "s"``)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


ANSWERS = {True: "yes", False: "no", None: "undetermined"}


def answer(value: bool | None) -> str:
    """A tri-state answer in words: ``"yes"``, ``"no"`` or ``"undetermined"`` (None)."""
    return ANSWERS[value]


def csv_text(rows: Sequence[dict], fields: Sequence[str] | None = None,
             lineterminator: str = "\r\n") -> str:
    """CSV of ``rows`` with a header row. ``fields`` fixes the columns; by default, every key of
    every row in order of first appearance. ``lineterminator`` is the csv module's default
    (``"\r\n"``) unless given."""
    if fields is None:
        fields = []
        for row in rows:
            fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_csv(path, what: str = "table") -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """Header and rows of a CSV file this tool wrote, each row labelled ``"<path> line N"``.

    Raises:
        MechanismError: unreadable or not UTF-8, no header, a repeated column, or a row with
            more or fewer fields than the header (named with its line).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise MechanismError(f"{what} {path} is empty: expected a header row")
            if len(set(header)) != len(header):
                raise MechanismError(f"{what} {path} repeats a column in its header")
            rows = []
            for fields in reader:
                where = f"{path} line {reader.line_num}"
                if len(fields) != len(header):
                    raise MechanismError(f"{where} has {len(fields)} fields, the header "
                                         f"{len(header)}: the file is damaged or was edited")
                rows.append((where, dict(zip(header, fields))))
            return header, rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MechanismError(f"cannot read {what} {path} ({e})") from None
