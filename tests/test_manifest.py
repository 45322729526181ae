"""The manifest's command line names the console script, however the CLI was started."""
import sys

from mechanism.io.manifest import command_line


def test_command_line_names_the_console_script(monkeypatch):
    for argv0 in ("/usr/bin/mechanism", "/work/cli/__main__.py"):
        monkeypatch.setattr(sys, "argv", [argv0, "study", "--data", "d"])
        assert command_line() == "mechanism study --data d"
    monkeypatch.setattr(sys, "argv", ["bench.py", "--x"])
    assert command_line() == "bench.py --x"
