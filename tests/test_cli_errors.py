"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing half-written."""
import os
import shutil
import subprocess
import sys

import cv2
import pytest
import torch
from click.testing import CliRunner

from cli.main import app


def _fails_cleanly(args, match):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], result.stderr
    return result


@pytest.fixture
def train_args(tiny_data, tiny_cache, tmp_path):
    def make(data=tiny_data, flags=(), **overrides):
        opts = {"--category": "brick", "--out": tmp_path / "run" / "model.pt", "--epochs": 1,
                "--input-size": 64, "--cache-dir": tiny_cache, **overrides}
        return ["train", "--data", data, "--quiet", *flags] + [x for kv in opts.items() for x in kv]
    return make


def _assert_nothing_written(tmp_path):
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_missing_data_folder(train_args, tmp_path):
    _fails_cleanly(train_args(data=tmp_path / "absent"), "does not exist")
    _assert_nothing_written(tmp_path)


def test_not_an_mvtec_folder(train_args, tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"x")
    _fails_cleanly(train_args(data=tmp_path / "flat"), "not an MVTec AD-style folder")


def test_unknown_category(train_args):
    _fails_cleanly(train_args(**{"--category": "carpet"}), "category 'carpet' not found")


def test_defect_image_without_mask(tiny_data, tmp_path, tiny_ckpt):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "brick", data / "brick")
    next((data / "brick" / "ground_truth" / "scratch").iterdir()).unlink()
    _fails_cleanly(["evaluate", "--ckpt", tiny_ckpt, "--data", data, "--quiet", "--no-cache"],
                   "has no mask")


def test_a_mask_of_another_size_than_its_image(tiny_data, tmp_path, tiny_ckpt):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "brick", data / "brick")
    mask_path = next((data / "brick" / "ground_truth" / "scratch").iterdir())
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(mask_path), mask[::2, ::2])
    json_out = tmp_path / "m.json"
    _fails_cleanly(["evaluate", "--ckpt", tiny_ckpt, "--data", data, "--quiet", "--no-cache",
                    "--json", json_out], "a mask must have its image's size")
    assert not json_out.exists()


def test_unreadable_image(tiny_data, tmp_path, train_args):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "brick", data / "brick")
    (data / "brick" / "train" / "good" / "000.png").write_bytes(b"not a png")
    _fails_cleanly(train_args(data=data, flags=["--no-cache"]), "cannot read image")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("option,value,match", [
    ("--tail-weight", "1.2", "tail weight"), ("--tail-weight", "-0.1", "tail weight"),
    ("--top-k-ratio", "0", "top-k ratio"), ("--top-k-ratio", "1.5", "top-k ratio"),
    ("--epochs", "0", "epochs"),
])
def test_hyper_parameters_out_of_range(train_args, tmp_path, option, value, match):
    _fails_cleanly(train_args(**{option: value}), match)
    _assert_nothing_written(tmp_path)


def test_unknown_backbone(train_args):
    _fails_cleanly(train_args(**{"--backbone": "no_such_net"}), "no_such_net")


def test_weights_file_that_does_not_fit(train_args, tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    _fails_cleanly(train_args(**{"--backbone-weights": wrong}), "does not fit")
    _fails_cleanly(train_args(**{"--backbone-weights": tmp_path / "absent.pth"}), "absent.pth")


def test_checkpoint_missing_corrupt_foreign(tmp_path):
    _fails_cleanly(["evaluate", "--ckpt", tmp_path / "absent.pt"], "does not exist")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    _fails_cleanly(["evaluate", "--ckpt", tmp_path / "corrupt.pt"], "corrupt")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "foreign.pt")
    _fails_cleanly(["evaluate", "--ckpt", tmp_path / "foreign.pt"], "not a tailflow-mechanism checkpoint")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(train_args, tiny_ckpt, tmp_path):
    _fails_cleanly(train_args(**{"--device": "cuda"}), "CUDA is not available")
    _fails_cleanly(["evaluate", "--ckpt", tiny_ckpt, "--device", "cuda"], "CUDA is not available")
    _assert_nothing_written(tmp_path)


def test_unwritable_output(train_args, tiny_ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails_cleanly(train_args(**{"--out": blocker / "model.pt"}), "is a file, not a folder")
    _fails_cleanly(["evaluate", "--ckpt", tiny_ckpt, "--json", blocker / "m.json", "--quiet"],
                   "is a file, not a folder")


def test_real_process_exit_code_and_single_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cli", "evaluate", "--ckpt", str(tmp_path / "x.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: checkpoint {tmp_path / 'x.pt'} does not exist"


@pytest.mark.parametrize("option,value,match", [("--flow-blocks", "0", "'--flow-blocks': 0 is not"),
                                                ("--flow-hidden", "0", "'--flow-hidden': 0 is not"),
                                                ("--local-avg", "2", "local averaging")])
def test_model_settings_out_of_range(train_args, tmp_path, option, value, match):
    _fails_cleanly(train_args(**{option: value}), match)
    _assert_nothing_written(tmp_path)


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


@pytest.mark.parametrize("args, match", [
    (["evaluate", "--ckpt", "m.pt", "--batch-size", "0"], "'--batch-size': 0 is not in the range x>=1"),
    (["evaluate", "--ckpt", "m.pt", "--batch-size", "-1"], "'--batch-size': -1 is not in the range x>=1"),
    (["analyze", "--ckpt", "m.pt", "--max-images", "0"], "'--max-images': 0 is not in the range x>=1"),
    (["analyze", "--ckpt", "m.pt", "--bootstrap", "-5"], "'--bootstrap': -5 is not in the range x>=0"),
    (["report", "--ckpt", "m.pt", "--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
    (["train", "--data", "d", "--out", "m.pt", "--lr", "0"], "'--lr': 0.0 is not in the range x>0"),
    (["train", "--data", "d", "--out", "m.pt", "--flow-blocks", "0"], "'--flow-blocks'"),
    (["data", "demo", "--out", "d", "--seed", "-2"], "'--seed': -2 is not in the range x>=0"),
    (["evaluate", "--ckpt", "m.pt", "--no-such-option"], "No such option '--no-such-option'"),
])
def test_numeric_options_out_of_range_are_one_error_line(tmp_path, monkeypatch, args, match):
    """Checked by the CLI before anything runs: nothing is read or written (the paths don't exist)."""
    monkeypatch.chdir(tmp_path)
    result = _fails_cleanly(args, match)
    assert "--help)" in result.stderr and "Usage:" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", [".", "..", "../.."])
def test_demo_data_refuses_to_replace_the_current_folder(tmp_path, monkeypatch, out):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    _fails_cleanly(["data", "demo", "--out", out, "--overwrite"], "is the current folder or holds it")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_thread_count_must_be_auto_or_positive(train_args, tmp_path, value):
    _fails_cleanly(["--threads", value, *train_args()], "'--threads'")
    _assert_nothing_written(tmp_path)


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
