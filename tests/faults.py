"""The fault catalogue's registry and the checks its cases share.

A test joins the catalogue with ``@fault(id, command, fault, promise)``; ``tests/FAULTS.md``
lists every registered case (``test_faults.py`` keeps it in step). Each case asserts the exit
code, the one ``error:`` line, and that outputs of an earlier run are byte-identical afterwards
(or that nothing was written).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from cli.main import app

CATALOGUE: dict[str, tuple[str, str, str]] = {}   # id → (command, fault, promise)
MODULES = ("test_faults", "test_faults_inputs", "test_sweep", "test_study")   # where cases live


def fault(case: str, command: str, what: str, promise: str):
    """Register the decorated test in the catalogue under ``case``."""
    if case in CATALOGUE and CATALOGUE[case] != (command, what, promise):
        raise ValueError(f"fault case {case} registered twice")
    CATALOGUE[case] = (command, what, promise)
    return lambda test: test


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(folder: Path) -> list[str]:
    """Hidden siblings of ``folder`` (stages, old copies, locks) that are still there."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def fails(args, match: str, code: int = 2):
    """The command exits ``code`` with exactly one ``error:`` line containing ``match``."""
    result = invoke(args)
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], result.stderr
    return result


def succeeds(args):
    result = invoke(args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def run_child(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout (it may kill itself)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          cwd=root, env=env)


def killed_during(module: str, name: str, args) -> subprocess.CompletedProcess:
    """Run the CLI with ``args`` in a child process whose ``module.name`` SIGKILLs it when called
    (the write stage under test)."""
    return run_child(f"""
        import importlib, os, signal
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(importlib.import_module({module!r}), {name!r}, die)
        from cli.main import app
        app.main({[str(a) for a in args]!r})
    """)


def table() -> str:
    """``tests/FAULTS.md``: the registered cases, by id."""
    lines = ["# Fault catalogue", "",
             "Generated from the `@fault` cases of " + ", ".join(f"`tests/{m}.py`" for m in MODULES)
             + " (registry in `tests/faults.py`). A bad-input case asserts the exit code (2) and the "
             "one `error:` line, and, where the command could have written something, that nothing "
             "was; a failure or kill case (W) asserts that an earlier run's outputs are byte-identical "
             "afterwards and that no stage or lock is left (a failure raised inside the library "
             "propagates as its exception); W12 checks file modes, T05, T07 and T08 what is read "
             "or drawn instead of an error.", "",
             f"{len(CATALOGUE)} cases.", "",
             "| id | command | fault | promise |", "|---|---|---|---|"]
    lines += [f"| {case} | {cmd} | {what} | {promise} |"
              for case, (cmd, what, promise) in sorted(CATALOGUE.items())]
    return "\n".join(lines) + "\n"
