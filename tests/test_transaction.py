"""Output transactions: all files or none, the old ones intact on failure, kills recovered."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mechanism.errors import MechanismError
from mechanism.io.atomic import write_text
from mechanism.io.transaction import (check_output_folder, commit_together, output_folder,
                                      recover_files)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) → its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def old_results(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "H1.json").write_text("old H1")
    (out / "REPORT.md").write_text("old report")
    return out


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (it may kill itself) and return its result."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)


def test_success_replaces_the_folder_and_keeps_untouched_files(tmp_path):
    out = old_results(tmp_path)
    with output_folder(out) as stage:
        assert stage != out and stage.parent == out.parent
        write_text(stage / "tables" / "H3.json", "new H3")
    assert snapshot(out) == {"REPORT.md": b"old report", "tables/H1.json": b"old H1",
                             "tables/H3.json": b"new H3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_fresh_folder_drops_what_the_old_one_held(tmp_path):
    out = old_results(tmp_path)
    with output_folder(out, keep_existing=False) as stage:
        write_text(stage / "REPORT.md", "new")
    assert snapshot(out) == {"REPORT.md": b"new"}


def test_failure_leaves_the_old_folder_byte_identical_and_no_debris(tmp_path):
    out = old_results(tmp_path)
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with output_folder(out) as stage:
            write_text(stage / "tables" / "H1.json", "half of a new run")
            (stage / "REPORT.md").unlink()
            raise RuntimeError("the analysis failed")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_killed_writer_leaves_the_old_folder_and_the_next_run_cleans_up(tmp_path):
    out = old_results(tmp_path)
    before = snapshot(out)
    child = run_child(f"""
        import os, signal
        from pathlib import Path
        from mechanism.io.transaction import output_folder
        with output_folder(Path({str(out)!r})) as stage:
            (stage / "REPORT.md").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    assert snapshot(out) == before
    assert any(p.name.startswith(".out.") for p in tmp_path.iterdir())   # the dead stage
    with output_folder(out):
        pass
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_swap_killed_between_its_renames_is_rolled_back(tmp_path):
    out = old_results(tmp_path)
    before = snapshot(out)
    os.replace(out, tmp_path / ".out.old")        # the first rename of the swap happened
    (tmp_path / ".out.stage").mkdir()             # the new contents, never swapped in
    with output_folder(out) as stage:
        assert snapshot(stage) == before
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_waiting_commit_takes_its_turn(tmp_path):
    """``lock="wait"`` blocks while another process holds the lock, then commits; "take" is
    refused meanwhile. The holder writes its marker just before it lets go, so a waiting commit
    that saw no marker did not wait."""
    target, marker = tmp_path / "results.csv", tmp_path / "released"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mechanism.io.transaction import locked
        with locked(Path({str(target)!r})):
            print("locked", flush=True)
            sys.stdin.readline()
            Path({str(marker)!r}).write_text("x")
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MechanismError, match="another command is writing"):
            with commit_together(target) as (staged,):
                staged.write_text("refused")
        holder.stdin.write("go\n")
        holder.stdin.flush()
        with commit_together(target, lock="wait") as (staged,):
            assert marker.exists()
            staged.write_text("mine")
    finally:
        holder.kill()
        holder.wait()
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["released", "results.csv"]


def test_two_writers_on_one_output_the_second_is_refused(tmp_path):
    out = old_results(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from mechanism.io.transaction import output_folder
        with output_folder(Path({str(out)!r})):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MechanismError, match="another command is writing"):
            with output_folder(out):
                pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("name", [".", ".."])
def test_outputs_that_name_no_folder_of_their_own_are_refused(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MechanismError, match="names no folder of its own"):
        check_output_folder(name)
    assert list(tmp_path.iterdir()) == []


def test_an_output_under_a_file_is_refused_before_anything_is_made(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(MechanismError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "f" / "sub" / "out")
    with pytest.raises(MechanismError, match="is a file, expected a folder"):
        check_output_folder(tmp_path / "f")


def test_files_follow_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def pair(tmp_path: Path) -> tuple[Path, Path]:
    ckpt, log = tmp_path / "model.pt", tmp_path / "model.log.csv"
    ckpt.write_text("old model")
    log.write_text("old log")
    return ckpt, log


def test_a_pair_is_committed_together(tmp_path):
    ckpt, log = pair(tmp_path)
    with commit_together(ckpt, log) as (a, b):
        a.write_text("new model")
        b.write_text("new log")
    assert (ckpt.read_text(), log.read_text()) == ("new model", "new log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.log.csv", "model.pt"]


def test_a_pair_that_fails_changes_neither_file(tmp_path):
    ckpt, log = pair(tmp_path)
    with pytest.raises(RuntimeError):
        with commit_together(ckpt, log) as (a, b):
            a.write_text("new model")
            raise RuntimeError("log could not be written")
    assert (ckpt.read_text(), log.read_text()) == ("old model", "old log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.log.csv", "model.pt"]


@pytest.mark.parametrize("moved", [0, 1])
def test_a_commit_killed_after_its_journal_is_finished_on_recovery(tmp_path, moved):
    ckpt, log = pair(tmp_path)
    child = run_child(f"""
        import os, signal
        from pathlib import Path
        import mechanism.io.transaction as t
        real = os.replace
        done = []
        def replace(a, b):     # die after the journal and {moved} of the two file renames
            if Path(a).name.endswith(".stage") and len(done) == {moved}:
                os.kill(os.getpid(), signal.SIGKILL)
            real(a, b)
            if Path(a).name.endswith(".stage"):
                done.append(a)
        t.os.replace = replace
        with t.commit_together(Path({str(ckpt)!r}), Path({str(log)!r})) as (a, b):
            a.write_text("new model")
            b.write_text("new log")
    """)
    assert child.returncode == -signal.SIGKILL
    recover_files(ckpt)
    assert (ckpt.read_text(), log.read_text()) == ("new model", "new log")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.pt.lock", "model.log.csv", "model.pt"]


def test_a_commit_killed_before_its_journal_changes_nothing_and_is_cleaned(tmp_path):
    ckpt, log = pair(tmp_path)
    child = run_child(f"""
        import os, signal
        from pathlib import Path
        from mechanism.io.transaction import commit_together
        with commit_together(Path({str(ckpt)!r}), Path({str(log)!r})) as (a, b):
            a.write_text("new model")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    assert (ckpt.read_text(), log.read_text()) == ("old model", "old log")
    with commit_together(ckpt, log) as (a, b):
        a.write_text("newer model")
        b.write_text("newer log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.log.csv", "model.pt"]
