"""The README's test command is exactly what CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    """The bash block after the README's "Tests (this is exactly what `.ci/run` runs" line."""
    text = (ROOT / "README.md").read_text()
    tests = text.index("Tests (this is exactly what `.ci/run` runs")
    test_command = re.search(r"```bash\n(.*?)\n```", text[tests:], flags=re.S)[1].strip()
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
