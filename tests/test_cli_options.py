"""CLI plumbing: the cache folder the commands choose and the thread count they pass on."""
import os

import torch
from click.testing import CliRunner

from cli.main import app


def test_the_cli_resolves_the_cache_folder_once(monkeypatch, tmp_path):
    """The library takes a folder or None; the commands choose it: --no-cache, --cache-dir, or
    $MECHANISM_CACHE_DIR (else ~/.cache/tailflow-mechanism/features)."""
    from cli.options import resolve_cache_dir
    monkeypatch.setenv("MECHANISM_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir(None, False) == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "given", False) == tmp_path / "given"
    assert resolve_cache_dir(tmp_path / "given", True) is None
    monkeypatch.delenv("MECHANISM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_cache_dir(None, False) == tmp_path / ".cache" / "tailflow-mechanism" / "features"


def test_a_fixed_thread_count_reaches_the_environment(monkeypatch):
    """``--threads N`` sets torch's count and ``MECHANISM_THREADS`` (which keeps training from
    adapting it, and reaches worker processes)."""
    from mechanism.device import THREADS_ENV
    monkeypatch.delenv(THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["--threads", "2", "data", "--help"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2 and os.environ[THREADS_ENV] == "2"
    finally:
        torch.set_num_threads(before)
        os.environ.pop(THREADS_ENV, None)


def test_threads_auto_reaches_the_environment_and_no_option_leaves_it_unset(monkeypatch):
    from mechanism.device import THREADS_ENV
    monkeypatch.delenv(THREADS_ENV, raising=False)
    try:
        assert CliRunner().invoke(app, ["data", "--help"]).exit_code == 0
        assert THREADS_ENV not in os.environ
        assert CliRunner().invoke(app, ["--threads", "auto", "data", "--help"]).exit_code == 0
        assert os.environ[THREADS_ENV] == "auto"
    finally:
        os.environ.pop(THREADS_ENV, None)


def test_device_names_that_name_no_device_are_one_line_errors(monkeypatch):
    """Malformed ``cuda:`` names and GPU ordinals the machine lacks fail as MechanismErrors
    (one error line in the CLI), not as torch's RuntimeError; real ones resolve."""
    import pytest

    from mechanism.device import resolve_device
    from mechanism.errors import MechanismError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("cuda:x", "cuda:", "cuda:-1", "gpu"):
        with pytest.raises(MechanismError, match="unknown device"):
            resolve_device(name)
    with pytest.raises(MechanismError, match="has 2 GPU"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(" CUDA ") == torch.device("cuda")
