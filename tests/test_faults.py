"""The fault catalogue, output side: failures, kills and concurrent writers against every
command that writes, each leaving the earlier outputs byte-identical and no debris.

Bad inputs (data, images, checkpoints, tables, options) are in ``test_faults_inputs.py``; the
registry and ``tests/FAULTS.md`` in ``faults.py`` (the last test here keeps the table current).
"""
from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from conftest import TINY_BACKBONE, TINY_FLOW
from faults import (CATALOGUE, MODULES, fails, fault, killed_during, run_child, siblings, snapshot,
                    succeeds, table)
from mechanism.sweep.plan import SweepSpec
from mechanism.sweep.run import run_sweep
from mechanism.train.config import TrainConfig

TABLE = Path(__file__).with_name("FAULTS.md")

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


@fault("W01", "analyze", "--sweep folder whose results.csv is malformed, into an earlier run's folder",
       "error line; the earlier tables and manifest byte-identical, no stage left")
def test_analyze_with_a_bad_sweep_keeps_the_earlier_results(analysed, tiny_ckpt, tiny_cache, tmp_path):
    out, before = analysed
    bad = tmp_path / "bad_sweep"
    bad.mkdir()
    (bad / "results.csv").write_text("category,seed\nbrick,zero\n")
    fails(analyze_args(tiny_ckpt, out, tiny_cache, "--sweep", bad), "results.csv")
    assert snapshot(out) == before and siblings(out) == []


@fault("W02", "analyze", "--baseline-ckpt of another grid, into an earlier run's folder",
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


@fault("W03", "analyze", "an analysis raises midway (after others finished)",
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


@fault("W04", "analyze", "SIGKILL while the tables are being written",
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


@fault("W05", "sweep-merge", "--out is one of the sources",
       "refused before writing; the source byte-identical")
def test_merge_into_a_source_is_refused(sweep, tmp_path):
    before = snapshot(sweep)
    fails(["sweep-merge", "--out", sweep, sweep], "is one of the sources")
    assert snapshot(sweep) == before


@fault("W06", "sweep-merge", "--out is another sweep folder (holds run folders)",
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
@fault("T03", "sweep-merge", "a results.csv row with an extra field / too few fields / a non-number",
       "error line naming the file; an earlier merge byte-identical")
def test_merge_refuses_malformed_rows_and_keeps_the_earlier_merge(sweep, tmp_path, case, edit, match):
    merged = tmp_path / "merged"
    succeeds(["sweep-merge", "--out", merged, sweep])
    before = snapshot(merged)
    fails(["sweep-merge", "--out", merged, _corrupt_results(sweep, tmp_path, edit)], match)
    assert snapshot(merged) == before and siblings(merged) == []


@fault("W23", "sweep-merge", "SIGKILL while the merged tables are written, over an earlier merge",
       "the earlier merge byte-identical; the next run removes the dead stage")
def test_merge_killed_while_writing_keeps_the_earlier_merge(sweep, tmp_path):
    merged = tmp_path / "merged"
    succeeds(["sweep-merge", "--out", merged, sweep])
    before = snapshot(merged)
    child = killed_during("mechanism.sweep.tables", "write_tables", ["sweep-merge", "--out", merged, sweep])
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert snapshot(merged) == before and ".merged.stage" in siblings(merged)
    succeeds(["sweep-merge", "--out", merged, sweep])
    assert siblings(merged) == [] and snapshot(merged) == before


@fault("W26", "sweep", "SIGKILL while the sweep rewrites results.csv, summaries and manifest (after "
       "a new run; they were separate files, left from two runs)",
       "the earlier four files byte-identical; the next call commits all four, no debris")
def test_sweep_killed_while_writing_its_tables(tiny_data, tiny_cache, tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--data", tiny_data, "--category", "brick", "--param", "tail_weight",
            "--out", out, "--epochs", "1", "--input-size", "64", "--layers", "3", "--local-avg", "0",
            "--flow-blocks", "2", "--flow-hidden", "32", "--quiet", "--cache-dir", tiny_cache]
    succeeds([*args, "--values", "0"])
    tables = ("results.csv", "summary.md", "summary.csv", "manifest.json")
    before = {name: (out / name).read_bytes() for name in tables}
    child = killed_during("mechanism.sweep.tables", "summary_markdown", [*args, "--values", "0,1"])
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert {name: (out / name).read_bytes() for name in tables} == before
    succeeds([*args, "--values", "0,1"])
    assert (out / "results.csv").read_text().count("\n") == 3      # header + two runs
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(tables)


@fault("W27", "figures", "SIGKILL while the figures are re-rendered",
       "the earlier figures byte-identical; the next run removes the dead stage")
def test_figures_killed_while_rendering(report_copy):
    out, before = report_copy
    child = killed_during("mechanism.figures.render", "save_figure", ["figures", "--results", out])
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".")} == before
    assert ".figures.stage" in siblings(out / "figures")
    succeeds(["figures", "--results", out])
    assert siblings(out / "figures") == [] and snapshot(out) == before


def train_args(data, out, cache, *extra):
    """One epoch on tiny brick; later ``extra`` options override earlier ones."""
    return ["train", "--data", data, "--category", "brick", "--out", out, "--epochs", "1",
            "--input-size", "64", "--quiet", "--cache-dir", cache, "--flow-hidden", "32", "--flow-blocks", "2",
            *extra]


@pytest.mark.parametrize("stage", ["checkpoint", "log", "between"])
@fault("W07", "train", "SIGKILL while writing the checkpoint, the log, or between their renames",
       "old checkpoint + log both kept (or both new after recovery); no debris after the next run")
def test_train_killed_at_each_write_stage_keeps_a_matching_pair(tiny_data, tiny_cache, tmp_path, stage):
    out = tmp_path / "run" / "model.pt"
    succeeds(train_args(tiny_data, out, tiny_cache))
    before = snapshot(out.parent)
    hooks = {"checkpoint": ("mechanism.train.fit", "save_checkpoint"),
             "log": ("mechanism.train.fit", "_write_log_csv"),
             "between": ("mechanism.io.transaction", "_finish_journal")}
    child = killed_during(*hooks[stage], train_args(tiny_data, out, tiny_cache, "--seed", "1"))
    assert child.returncode == -signal.SIGKILL, child.stderr
    if stage == "between":     # the journal was complete: loading finishes the commit
        from mechanism.train.checkpoint import load_checkpoint
        assert load_checkpoint(out).train.seed == 1
        assert snapshot(out.parent) != before
    else:
        assert {k: v for k, v in snapshot(out.parent).items() if not k.startswith(".")} == before
    succeeds(train_args(tiny_data, out, tiny_cache))
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.log.csv", "model.pt"]


@pytest.mark.parametrize("out", [".", "..", "../.."])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@fault("W08", "data demo", "--out . , .. or ../.. (with or without --overwrite)",
       "refused before generating anything; the tree unchanged, no debris")
def test_demo_data_into_the_working_folder_is_refused(tmp_path, monkeypatch, out, overwrite):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    fails(["data", "demo", "--out", out, *overwrite], "folder")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/work"]


@fault("W09", "demo", "--out under a folder that cannot be written",
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
@fault("W10", "analyze, sweep-merge, data demo", "--out lies under a regular file",
       "error line saying which path is a file")
def test_output_under_a_file_is_one_clear_line(tmp_path, tiny_ckpt, tiny_cache, sweep, command):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "out"
    args = {"analyze": analyze_args(tiny_ckpt, out, tiny_cache),
            "sweep-merge": ["sweep-merge", "--out", out, sweep],
            "data demo": ["data", "demo", "--out", out]}[command]
    fails(args, "is a file, not a folder")


@pytest.mark.parametrize("command", ["analyze", "train"])
@fault("W11", "analyze, train", "a second writer on an output another command is writing",
       "refused at once with the lock's name; the first writer's outputs unaffected")
def test_two_writers_on_one_output(request, tiny_data, tiny_ckpt, tiny_cache, command):
    out, before = request.getfixturevalue({"analyze": "analysed", "train": "trained"}[command])
    args = analyze_args(tiny_ckpt, out, tiny_cache) if command == "analyze" else \
        train_args(tiny_data, out, tiny_cache)
    from mechanism.io.transaction import locked
    with locked(out):
        fails(args, "another command is writing")
    assert snapshot(out if command == "analyze" else out.parent) == before


@pytest.mark.parametrize("mask", [0o022, 0o077])
@fault("W12", "analyze", "files written under umask 022 (and 077)",
       "tables and manifest 0644 (0600): the user's umask, not mkstemp's 0600")
def test_outputs_follow_the_umask(tiny_ckpt, tiny_cache, tmp_path, mask):
    previous = os.umask(mask)
    try:
        succeeds(analyze_args(tiny_ckpt, tmp_path / "out", tiny_cache))
    finally:
        os.umask(previous)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {0o666 & ~mask}


@fault("W24", "report, sweep-merge", "--out a folder of the user's own files, hidden ones included "
       "(the checkpoint's folder, a .git: it was replaced as a whole, deleting them)", "error line naming what it holds; every file byte-identical")
def test_outputs_that_would_delete_other_files_are_refused(tiny_ckpt, tiny_baseline_ckpt, tiny_cache, sweep,
                                                          tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(tiny_ckpt, own / "model.pt")
    (own / "NOTES.txt").write_text("mine")
    (own / ".git").mkdir()                       # hidden entries count too
    (own / ".git" / "HEAD").write_text("ref")
    before = snapshot(own)
    fails(report_args(own / "model.pt", tiny_baseline_ckpt, own, tiny_cache),
          "is not a report folder (it holds .git, NOTES.txt, model.pt)")
    fails(["sweep-merge", "--out", own, sweep], "holds sub-folders")
    (own / ".git" / "HEAD").unlink()
    (own / ".git").rmdir()
    (own / ".env").write_text("SECRET=1")
    fails(["sweep-merge", "--out", own, sweep], "is not a merged sweep folder (it holds .env, NOTES.txt")
    before = snapshot(own)
    assert snapshot(own) == before


@pytest.fixture(scope="module")
def reported(tiny_ckpt, tiny_baseline_ckpt, tiny_cache, tmp_path_factory) -> Path:
    """A report written by a successful ``mechanism report`` (copied by each test that uses it)."""
    out = tmp_path_factory.mktemp("reported") / "report"
    succeeds(report_args(tiny_ckpt, tiny_baseline_ckpt, out, tiny_cache))
    return out


def report_args(ckpt, baseline, out, cache):
    return ["report", "--ckpt", ckpt, "--baseline-ckpt", baseline, "--out", out, "--quiet",
            "--bootstrap", "20", "--cache-dir", cache, "--device", "cpu"]


@pytest.fixture
def report_copy(reported, tmp_path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "report"
    shutil.copytree(reported, out)
    return out, snapshot(out)


@fault("W13", "report", "an analysis raises after others finished, into an earlier report's folder",
       "the exception propagates; REPORT.md, tables, figures and manifest byte-identical, no stage left")
def test_report_failing_midway_keeps_the_earlier_report(report_copy, tiny_ckpt, tiny_baseline_ckpt,
                                                        tiny_cache, monkeypatch):
    out, before = report_copy
    import mechanism.pipelines.analyze as pipeline
    real = pipeline.run_hypothesis

    def broken(name, *args, **kwargs):
        if name == "H4":
            raise RuntimeError("H4 broke")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(pipeline, "run_hypothesis", broken)
    from mechanism.pipelines.analyze import AnalysisSettings
    from mechanism.pipelines.report import build_report
    with pytest.raises(RuntimeError, match="H4 broke"):
        build_report(tiny_ckpt, out, tiny_baseline_ckpt, settings=AnalysisSettings(n_boot=20),
                     cache_dir=tiny_cache, progress=False)
    assert snapshot(out) == before and siblings(out) == []


@fault("W14", "report", "SIGKILL while the figures are rendered",
       "the earlier report byte-identical; the next run removes the dead stage")
def test_report_killed_while_rendering_keeps_the_earlier_report(report_copy, tiny_ckpt, tiny_baseline_ckpt,
                                                                tiny_cache):
    out, before = report_copy
    child = killed_during("mechanism.pipelines.report", "render_figures",
                          report_args(tiny_ckpt, tiny_baseline_ckpt, out, tiny_cache))
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert snapshot(out) == before and ".report.stage" in siblings(out)
    succeeds(report_args(tiny_ckpt, tiny_baseline_ckpt, out, tiny_cache))
    assert siblings(out) == []


@fault("W15", "report", "rerun into an earlier report with a baseline whose data root holds other "
       "test images (failed after 34 s, the tables overwritten)",
       "refused before any analysis; the earlier report byte-identical")
def test_report_with_a_baseline_of_other_test_images(report_copy, tiny_ckpt, tiny_data, tiny_cache, tmp_path):
    out, before = report_copy
    other = tmp_path / "other"
    shutil.copytree(tiny_data / "brick", other / "brick")
    next((other / "brick" / "test" / "good").iterdir()).unlink()      # same training images
    baseline = tmp_path / "base.pt"
    succeeds(train_args(other, baseline, tiny_cache, "--layers", "3", "--local-avg", "0",
                        "--tail-weight", "0"))
    fails(report_args(tiny_ckpt, baseline, out, tiny_cache), "test images differ")
    assert snapshot(out) == before and siblings(out) == []


@fault("W16", "evaluate", "SIGKILL while --json and --save-maps are written, over an earlier pair",
       "the earlier JSON and maps byte-identical; the next run leaves no debris")
def test_evaluate_killed_while_writing_keeps_the_earlier_outputs(tiny_ckpt, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", "--ckpt", tiny_ckpt, "--json", out / "m.json", "--save-maps", out / "maps.npz",
            "--quiet", "--no-cache"]
    succeeds(args)
    before = snapshot(out)
    child = killed_during("mechanism.eval.evaluate", "save_maps", args)   # after the JSON was staged
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".")} == before
    succeeds(args)
    assert sorted(p.name for p in out.iterdir()) == ["m.json", "maps.npz"]


@pytest.fixture
def trained(tiny_data, tiny_cache, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A checkpoint + log written by a successful ``train``, and the bytes of their folder."""
    out = tmp_path / "run" / "model.pt"
    succeeds(train_args(tiny_data, out, tiny_cache))
    return out, snapshot(out.parent)


@fault("W18", "analyze", "a writer SIGKILLed while it holds the output's lock",
       "the next writer takes the lock over (flock ends with the process) and removes its file")
def test_a_dead_writers_lock_is_taken_over(analysed, tiny_ckpt, tiny_cache):
    out, _ = analysed
    child = run_child(f"""
        import os, signal
        from pathlib import Path
        from mechanism.io.transaction import locked
        with locked(Path({str(out)!r})):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL and siblings(out) == [".results.lock"]
    succeeds(analyze_args(tiny_ckpt, out, tiny_cache))
    assert siblings(out) == []


@fault("W19", "train", "training that diverges (--lr 1e30), over an earlier checkpoint",
       "error line: training diverged, no checkpoint written; the earlier pair byte-identical")
def test_diverging_training_keeps_the_earlier_checkpoint(trained, tiny_data, tiny_cache):
    out, before = trained
    fails(train_args(tiny_data, out, tiny_cache, "--lr", "1e30", "--epochs", "3"), "training diverged")
    assert snapshot(out.parent) == before


@fault("W20", "data demo", "generation fails midway (--overwrite of an earlier data set)",
       "the exception propagates; the earlier data byte-identical, no stage left")
def test_demo_data_failing_midway_keeps_the_earlier_data(tmp_path, monkeypatch):
    from mechanism.data.demo import generate as demo
    out = tmp_path / "data"
    demo.generate_demo(out, categories=("brick",), n_train=2, n_test_good=1, n_test_defect=1, size=32)
    before = snapshot(out)
    real, calls = demo.render_sample, []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)
    monkeypatch.setattr(demo, "render_sample", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        demo.generate_demo(out, seed=1, categories=("brick",), n_train=2, n_test_good=1,
                           n_test_defect=1, size=32, overwrite=True)
    assert snapshot(out) == before and siblings(out) == []


def test_the_catalogue_table_is_current():
    for module in MODULES:
        importlib.import_module(module)     # registers its cases
    text = table()
    if os.environ.get("MECHANISM_WRITE_FAULTS"):
        TABLE.write_text(text, encoding="utf-8")
    assert TABLE.read_text(encoding="utf-8") == text, \
        "tests/FAULTS.md is stale: rerun with MECHANISM_WRITE_FAULTS=1"
    assert len(CATALOGUE) >= 60
