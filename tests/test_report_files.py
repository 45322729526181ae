"""``report.files``: a result's three files are a function of its JSON alone.

A category report of the committed reference study
(``analysis_results/mechanism/categories/grass/tables``) is read back with the shared deserialiser and written again: JSON, CSV and markdown must come out byte for byte.
"""
import json
from pathlib import Path

import pytest

from mechanism.analyzers.registry import RESULT_TYPES
from mechanism.eval.observed_effect import ObservedEffect
from mechanism.io.serialize import from_plain
from mechanism.report.files import read_result, write_result

REFERENCE = (Path(__file__).resolve().parents[1] / "analysis_results" / "mechanism" / "categories"
             / "grass" / "tables")   # one category report of the reference study
TYPES = {**RESULT_TYPES, "observed_effect": ObservedEffect}


@pytest.mark.parametrize("name", TYPES)
def test_committed_tables_are_rewritten_byte_for_byte_from_their_json(name, tmp_path):
    result = from_plain(TYPES[name], json.loads((REFERENCE / f"{name}.json").read_text()))
    written = write_result(result, tmp_path, name)
    assert [p.name for p in written] == [f"{name}.json", f"{name}.csv", f"{name}.md"]
    for path in written:
        assert path.read_bytes() == (REFERENCE / path.name).read_bytes(), path.name


@pytest.mark.parametrize("name", RESULT_TYPES)
def test_read_result_gives_the_committed_result(name):
    result = read_result(REFERENCE / f"{name}.json", name)
    assert type(result) is RESULT_TYPES[name] and result.context.category == "grass"
