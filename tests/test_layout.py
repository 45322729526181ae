"""The package layout of issue 11: imports point down the data flow, no module over 300 lines,
and the top of ``mechanism/`` holds only the stages (subpackages) and two base modules."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (("errors", "device", "io"), ("stats",), ("data",), ("backbone",), ("flow",), ("train",),
          ("eval",), ("analyzers",), ("sweep",), ("report",), ("figures",), ("pipelines",))
"""The stages of ``mechanism`` from the bottom up; a module imports from its own stage or lower."""
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 300


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _stage(module: str) -> str:
    """``mechanism.eval.detector`` → ``eval``; ``mechanism`` itself → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``mechanism…`` import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, m) for line, m in found if m == "mechanism" or m.startswith("mechanism.")]


def test_every_stage_is_placed():
    stages = {p.name for p in (ROOT / "mechanism").iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.stem for p in (ROOT / "mechanism").glob("*.py") if p.stem != "__init__"}
    assert stages | modules == set(LAYER)


def test_imports_point_down_the_data_flow():
    upward = []
    for path in _modules("mechanism"):
        own = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if own == "mechanism.__init__":
            continue                     # the public API re-exports every stage
        for line, imported in _imports(path):
            if _stage(imported) == "" or LAYER[_stage(imported)] > LAYER[_stage(own)]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert upward == []


@pytest.mark.parametrize("folder", ["mechanism", "cli"])
def test_no_module_over_the_line_limit(folder):
    long = {str(p.relative_to(ROOT)): n for p in _modules(folder)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_public_api_is_importable():
    import mechanism
    from mechanism import HYPOTHESES, analyze, tables
    assert HYPOTHESES == ("H1", "H3", "H4", "H7") and callable(analyze)
    assert tables.__name__ == "mechanism.report.tables"
    assert all(getattr(mechanism, name) is not None for name in mechanism.__all__)


def test_the_cli_starts_without_torch():
    """``mechanism --help`` imports the click app and ``mechanism.errors`` only."""
    code = "import sys, cli.main; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_layout_test_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from mechanism.pipelines.demo import run_demo\n")
    assert _imports(bad) == [(2, "mechanism.pipelines.demo")]
    assert LAYER[_stage("mechanism.pipelines.demo")] > LAYER["stats"]
