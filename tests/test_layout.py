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


def _imports(path: Path, own: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``mechanism…`` import in the file of module ``own``, at any
    depth; relative imports are resolved against ``own``'s package, and a module named in
    ``importlib.import_module("…")`` counts as imported."""
    package = own.split(".") if path.name == "__init__.py" else own.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return sorted((line, m) for line, m in found if m == "mechanism" or m.startswith("mechanism."))


def _upward(path: Path, own: str) -> list[str]:
    """The imports of module ``own`` (file ``path``) that reach a higher stage, or the package."""
    return [f"{path.name}:{line} imports {imported}" for line, imported in _imports(path, own)
            if _stage(imported) == "" or LAYER[_stage(imported)] > LAYER[_stage(own)]]


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
        upward += [f"{path.parent.relative_to(ROOT)}/{line}" for line in _upward(path, own)]
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
    for name in mechanism.__all__:
        value = getattr(mechanism, name)
        assert (value is tables) == (name == "tables"), name   # only ``tables`` is a module
        assert getattr(value, "__name__", name).rsplit(".", 1)[-1] == name or name == "HYPOTHESES"


def test_the_cli_starts_without_torch():
    """``mechanism --help`` imports the click app and ``mechanism.errors`` only."""
    code = "import sys, cli.main; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_layout_check_sees_every_kind_of_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import importlib\n"
                   "from mechanism.stats import bootstrap\n"          # down: fine
                   "def f():\n    from mechanism.pipelines.demo import run_demo\n"
                   "import mechanism.report.tables as t\n"
                   "from ...figures import style\n"
                   "from .. import errors\n"                          # mechanism.errors: down
                   "importlib.import_module('mechanism.sweep.run')\n"
                   "from mechanism import analyze\n")
    assert _upward(bad, "mechanism.eval.metrics.m") == [
        "m.py:4 imports mechanism.pipelines.demo", "m.py:5 imports mechanism.report.tables",
        "m.py:6 imports mechanism.figures", "m.py:8 imports mechanism.sweep.run",
        "m.py:9 imports mechanism"]
