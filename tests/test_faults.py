"""The fault catalogue: hostile inputs and kills against every command that writes.

Each case asserts the exit code, the one ``error:`` line, and that the outputs of an earlier
successful run are byte-identical afterwards. ``tests/FAULTS.md`` lists the cases (generated
from ``CATALOGUE``; a test keeps it in step).
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import app
from conftest import TINY_BACKBONE, TINY_FLOW
from mechanism.sweep.plan import SweepSpec
from mechanism.sweep.run import run_sweep
from mechanism.train.config import TrainConfig

CATALOGUE: list[tuple[str, str, str, str]] = []   # (id, command, fault, promise)
TABLE = Path(__file__).with_name("FAULTS.md")


def fault(case: str, command: str, what: str, promise: str):
    """Register a test in the catalogue under ``case``."""
    CATALOGUE.append((case, command, what, promise))
    return lambda test: test


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def fails(args, match: str) -> None:
    """The command exits 2 with exactly one ``error:`` line containing ``match``."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], result.stderr


def run_child(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout (it may kill itself)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          cwd=root, env=env)


def succeeds(args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.fixture(scope="module")
def sweep(tiny_data, tiny_cache, tmp_path_factory) -> Path:
    """λ ∈ {0, 0.7}, seed 0, one epoch on tiny brick."""
    out = tmp_path_factory.mktemp("faults") / "sweep"
    run_sweep(SweepSpec(tiny_data, ("brick",), "tail_weight", (0.0, 0.7), seeds=(0,),
                        backbone=TINY_BACKBONE, flow=TINY_FLOW, train=TrainConfig(epochs=1, batch_size=4)),
              out, cache_dir=tiny_cache, progress=False)
    return out


def analyze_args(ckpt, out, cache, *extra):
    return ["analyze", "--hypothesis", "H7", "--ckpt", ckpt, "--out", out, "--quiet",
            "--bootstrap", "20", "--cache-dir", cache, *extra]


@pytest.fixture
def analysed(tiny_ckpt, tiny_cache, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """An output folder written by a successful ``analyze``, and its bytes."""
    out = tmp_path / "results"
    succeeds(analyze_args(tiny_ckpt, out, tiny_cache))
    return out, snapshot(out)


@fault("F01", "analyze", "--sweep folder whose results.csv is malformed, into an earlier run's folder",
       "error line; the earlier tables and manifest byte-identical, no stage left")
def test_analyze_with_a_bad_sweep_keeps_the_earlier_results(analysed, tiny_ckpt, tiny_cache, tmp_path):
    out, before = analysed
    bad = tmp_path / "bad_sweep"
    bad.mkdir()
    (bad / "results.csv").write_text("category,seed\nbrick,zero\n")
    fails(analyze_args(tiny_ckpt, out, tiny_cache, "--sweep", bad), "results.csv")
    assert snapshot(out) == before and siblings(out) == []


@fault("F02", "analyze", "--baseline-ckpt of another grid, into an earlier run's folder",
       "error line naming both grids; earlier results byte-identical")
def test_analyze_with_an_incompatible_baseline_keeps_the_earlier_results(
        analysed, tiny_ckpt, tiny_cache, tiny_data, tmp_path):
    out, before = analysed
    other = tmp_path / "other.pt"
    succeeds(["train", "--data", tiny_data, "--category", "brick", "--out", other, "--epochs", "1",
              "--input-size", "96", "--quiet", "--cache-dir", tiny_cache, "--flow-hidden", "32",
              "--flow-blocks", "2"])
    fails(analyze_args(tiny_ckpt, out, tiny_cache, "--baseline-ckpt", other), "grid")
    assert snapshot(out) == before and siblings(out) == []


@fault("F03", "analyze", "an analysis raises midway (after others finished)",
       "the exception propagates; earlier results byte-identical, no stage left")
def test_analyze_failing_midway_keeps_the_earlier_results(analysed, tiny_ckpt, tiny_cache, monkeypatch):
    out, before = analysed
    import mechanism.pipelines.analyze as pipeline

    def broken(name, *args, **kwargs):
        if name == "H7":
            raise KeyboardInterrupt   # Ctrl-C during the second analysis
        return real(name, *args, **kwargs)
    real = pipeline.run_hypothesis
    monkeypatch.setattr(pipeline, "run_hypothesis", broken)
    with pytest.raises(KeyboardInterrupt):
        pipeline.analyze(tiny_ckpt, ("H1", "H7"), out, cache_dir=tiny_cache, progress=False)
    assert snapshot(out) == before and siblings(out) == []


@fault("F04", "analyze", "SIGKILL while the tables are being written",
       "the earlier folder byte-identical; the next run removes the dead stage")
def test_analyze_killed_while_writing_keeps_the_earlier_results(analysed, tiny_ckpt, tiny_cache):
    out, before = analysed
    child = run_child(f"""
        import os, signal
        import mechanism.pipelines.analyze as pipeline
        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        pipeline.write_manifest = killed       # after the tables, before the manifest
        pipeline.analyze({str(tiny_ckpt)!r}, ("H7",), {str(out)!r}, cache_dir=None, progress=False)
    """)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert snapshot(out) == before and ".results.stage" in siblings(out)
    succeeds(analyze_args(tiny_ckpt, out, tiny_cache))
    assert siblings(out) == []


@fault("F05", "sweep-merge", "--out is one of the sources",
       "refused before writing; the source byte-identical")
def test_merge_into_a_source_is_refused(sweep, tmp_path):
    before = snapshot(sweep)
    fails(["sweep-merge", "--out", sweep, sweep], "is one of the sources")
    assert snapshot(sweep) == before


@fault("F06", "sweep-merge", "--out is another sweep folder (holds run folders)",
       "refused; that folder byte-identical")
def test_merge_into_a_sweep_folder_is_refused(sweep, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(sweep, other)
    before = snapshot(other)
    fails(["sweep-merge", "--out", other, sweep], "holds sub-folders")
    assert snapshot(other) == before


def _corrupt_results(sweep: Path, tmp_path: Path, edit) -> Path:
    shard = tmp_path / "shard"
    shard.mkdir()
    with open(sweep / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(shard / "results.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return shard


@pytest.mark.parametrize("case,edit,match", [
    ("extra", lambda rows: rows[1].append("surplus"), "results.csv"),
    ("truncated", lambda rows: rows[1].__delitem__(slice(-3, None)), "results.csv"),
    ("not a number", lambda rows: rows[1].__setitem__(rows[0].index("pixel_ap"), "high"), "pixel_ap"),
])
@fault("F07", "sweep-merge", "a results.csv row with an extra field / too few fields / a non-number",
       "error line naming the file; an earlier merge byte-identical")
def test_merge_refuses_malformed_rows_and_keeps_the_earlier_merge(sweep, tmp_path, case, edit, match):
    merged = tmp_path / "merged"
    succeeds(["sweep-merge", "--out", merged, sweep])
    before = snapshot(merged)
    fails(["sweep-merge", "--out", merged, _corrupt_results(sweep, tmp_path, edit)], match)
    assert snapshot(merged) == before and siblings(merged) == []


def train_args(data, out, cache, *extra):
    return ["train", "--data", data, "--category", "brick", "--out", out, "--epochs", "1",
            "--input-size", "64", "--quiet", "--cache-dir", cache, "--flow-hidden", "32", "--flow-blocks", "2",
            *extra]


@pytest.mark.parametrize("stage", ["checkpoint", "log", "between"])
@fault("F08", "train", "SIGKILL while writing the checkpoint, the log, or between their renames",
       "old checkpoint + log both kept (or both new after recovery); no debris after the next run")
def test_train_killed_at_each_write_stage_keeps_a_matching_pair(tiny_data, tiny_cache, tmp_path, stage):
    out = tmp_path / "run" / "model.pt"
    succeeds(train_args(tiny_data, out, tiny_cache))
    before = snapshot(out.parent)
    hooks = {"checkpoint": "import mechanism.train.fit as m; m.save_checkpoint = die",
             "log": "import mechanism.train.fit as m; m._write_log_csv = die",
             "between": "import mechanism.io.transaction as t; t._finish_journal = die"}
    child = run_child(f"""
        import os, signal, sys
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        {hooks[stage]}
        from cli.main import app
        sys.argv = ["mechanism"] + {[str(a) for a in train_args(tiny_data, out, tiny_cache, "--seed", "1")]!r}
        app.main()
    """)
    assert child.returncode == -signal.SIGKILL, child.stderr
    if stage == "between":     # the journal was complete: loading finishes the commit
        from mechanism.train.checkpoint import load_checkpoint
        assert load_checkpoint(out).train.seed == 1
        assert snapshot(out.parent) != before
    else:
        assert {k: v for k, v in snapshot(out.parent).items() if not k.startswith(".")} == before
    succeeds(train_args(tiny_data, out, tiny_cache))
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.log.csv", "model.pt"]


@pytest.mark.parametrize("out", [".", ".."])
@fault("F09", "data demo", "--out . or --out ..",
       "refused before generating anything; no debris in the working folder or above")
def test_demo_data_into_the_working_folder_is_refused(tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    fails(["data", "demo", "--out", out], "folder")
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]


@fault("F10", "demo", "--out under a folder that cannot be written",
       "refused at once, before data generation and training")
def test_demo_refuses_an_unwritable_output_before_any_work(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):   # root writes anywhere: deny this one folder as a user's would
        import mechanism.io.transaction as transaction
        real = os.access
        monkeypatch.setattr(transaction.os, "access",
                            lambda p, mode: False if Path(p) == locked else real(p, mode))
    try:
        fails(["demo", "--quick", "--data", tmp_path / "data", "--runs", tmp_path / "runs",
               "--out", locked / "report"], "not writable")
        assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", ["analyze", "sweep-merge", "data demo"])
@fault("F11", "analyze, sweep-merge, data demo", "--out lies under a regular file",
       "error line saying which path is a file")
def test_output_under_a_file_is_one_clear_line(tmp_path, tiny_ckpt, tiny_cache, sweep, command):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "out"
    args = {"analyze": analyze_args(tiny_ckpt, out, tiny_cache),
            "sweep-merge": ["sweep-merge", "--out", out, sweep],
            "data demo": ["data", "demo", "--out", out]}[command]
    fails(args, "is a file, not a folder")


@fault("F12", "analyze", "a second writer on an output folder another command is writing",
       "refused with the lock's name; the first writer's results unaffected")
def test_two_writers_on_one_folder(analysed, tiny_ckpt, tiny_cache):
    out, before = analysed
    from mechanism.io.transaction import locked
    with locked(out):
        fails(analyze_args(tiny_ckpt, out, tiny_cache), "another command is writing")
    assert snapshot(out) == before


@pytest.mark.parametrize("value", ["0", "-1"])
@fault("F13", "evaluate", "--batch-size 0 or -1", "error line with the allowed range")
def test_evaluate_batch_size_out_of_range(tiny_ckpt, value):
    fails(["evaluate", "--ckpt", tiny_ckpt, "--batch-size", value, "--quiet"], "--batch-size")


@fault("F14", "evaluate", "a 74-byte PNG that declares 100000×100000 pixels",
       "error line naming the image; nothing decoded")
def test_image_declaring_a_huge_size(tiny_data, tiny_ckpt, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "brick", data / "brick")
    png = cv2.imencode(".png", np.zeros((1, 1), np.uint8))[1].tobytes()
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    huge = png[:8] + chunk + png[33:]
    target = next((data / "brick" / "test" / "good").iterdir())
    target.write_bytes(huge)
    fails(["evaluate", "--ckpt", tiny_ckpt, "--data", data, "--quiet", "--no-cache"], target.name)


@fault("F15", "evaluate", "a checkpoint whose flow weights miss a key",
       "error line naming the missing weight")
def test_state_dict_with_a_missing_key_names_it(tiny_ckpt, tmp_path):
    payload = torch.load(tiny_ckpt, weights_only=True)
    key = sorted(payload["flow_state"])[0]
    del payload["flow_state"][key]
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    fails(["evaluate", "--ckpt", bad, "--quiet"], f"missing weight {key!r}")


@fault("F16", "analyze", "files written under umask 022",
       "tables and manifest readable by the group and others (0644)")
def test_outputs_follow_the_umask(analysed):
    out, _ = analysed
    modes = {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert modes == {0o644 & ~_umask()}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_catalogue_table_is_current():
    lines = ["# Fault catalogue", "",
             "Generated from `tests/test_faults.py` (`CATALOGUE`); each case asserts the exit code, "
             "the one `error:` line and that earlier outputs stay byte-identical.", "",
             "| id | command | fault | promise |", "|---|---|---|---|"]
    lines += [f"| {c} | {cmd} | {what} | {promise} |" for c, cmd, what, promise in CATALOGUE]
    text = "\n".join(lines) + "\n"
    if os.environ.get("MECHANISM_WRITE_FAULTS"):
        TABLE.write_text(text, encoding="utf-8")
    assert TABLE.read_text(encoding="utf-8") == text, \
        "tests/FAULTS.md is stale: rerun with MECHANISM_WRITE_FAULTS=1"
