"""Output transactions: a command's files appear all together or not at all.

``output_folder(out)`` stages a folder's new contents in a hidden sibling and swaps it in when
the command succeeds; ``commit_together`` renames several finished files (a checkpoint and its
log) in one journaled step. Both take a lock on the target, so two writers never interleave,
and both clean up what an earlier, killed writer left: a staged folder that never got swapped
in is deleted, an interrupted swap is completed or rolled back, a journaled commit is finished.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from mechanism.errors import MechanismError
from mechanism.io.atomic import check_parent, make_parent, prepare_output, temporaries

STAGE, OLD, JOURNAL, LOCK = "stage", "old", "commit", "lock"
_OWN_HIDDEN = re.compile(rf"\..+\.(?:{STAGE}|{OLD}|{JOURNAL}|{LOCK})(?:\.tmp)?$|\..+\.tmp(?:\.\w+)?$")
"""Names of what ``output_folder``, ``commit_together``, ``locked`` and ``atomic_path`` leave
beside their targets."""


def _sibling(target: Path, kind: str) -> Path:
    """Hidden sibling of ``target`` for one role: ``.<name>.<kind>``."""
    return target.parent / f".{target.name}.{kind}"


def check_output_folder(out: str | Path) -> Path:
    """Check, creating nothing, that the folder ``out`` could be written; call it before any
    heavy work.

    Raises:
        MechanismError: ``out`` names no folder of its own (``.``, ``..``), is a file, lies
            under a file, or its nearest existing ancestor is not writable.
    """
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise MechanismError(f"output {out} names no folder of its own: give a path like results/run1")
    if out.exists() and not out.is_dir():
        raise MechanismError(f"output {out} is a file, expected a folder")
    check_parent(out)
    return out


def check_own_folder(out: Path, entries: tuple[str, ...], what: str) -> None:
    """Refuse an existing ``out`` that holds anything but ``entries`` and the hidden stages,
    locks and temporaries of this tool's own writes: a command that replaces its folder as a
    whole must not delete a user's other files (``.git``, ``.env`` included).

    Raises:
        MechanismError: naming what else ``out`` holds.
    """
    if not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in entries and not _OWN_HIDDEN.match(p.name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise MechanismError(f"{out} is not {what} (it holds {shown}); it would be replaced as a "
                             "whole: choose another --out or empty it")


@contextlib.contextmanager
def locked(target: Path, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a lock file beside it, removed on release).

    ``wait``: block until another holder releases it (shards of one sweep rewriting its shared
    tables) instead of refusing.

    A killed holder's lock ends with its process (flock); the file it leaves is taken over and
    removed by the next writer.

    Raises:
        MechanismError: another process holds it (two commands writing one output).
    """
    path = _sibling(Path(target), LOCK)
    fd = _acquire(path, target, wait)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _acquire(path: Path, target: Path, wait: bool) -> int:
    """An open descriptor of the lock file ``path``, flocked exclusively."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise MechanismError(f"another command is writing {target} (lock {path}); "
                                     "wait for it to finish") from None
            raise
        try:   # the file may have been removed by its last holder between open and flock
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _recover_folder(target: Path) -> None:
    """Undo what a killed ``output_folder`` left (call with the lock held)."""
    stage, old = _sibling(target, STAGE), _sibling(target, OLD)
    if old.exists():
        if target.exists():
            _remove(old)          # killed after the swap: the new contents are whole
        else:
            os.replace(old, target)   # killed between the two renames: the old ones come back
    if stage.exists():
        _remove(stage)            # killed before the swap: never visible, never valid


@contextlib.contextmanager
def output_folder(out: str | Path, keep_existing: bool = True) -> Iterator[Path]:
    """Yield a staging folder for ``out``'s new contents; on success it replaces ``out``.

    ``keep_existing``: start the stage from ``out``'s present files (commands that update a part
    of a folder, e.g. one hypothesis's tables); False starts from an empty folder. On any
    exception the stage is deleted and ``out`` is left exactly as it was.

    Raises:
        MechanismError: ``out`` cannot be written, is a file, or is being written by another
            command.
    """
    out = check_output_folder(out)
    make_parent(out)
    with locked(out):
        _recover_folder(out)
        stage = _sibling(out, STAGE)
        try:
            if keep_existing and out.is_dir():
                shutil.copytree(out, stage, symlinks=True)   # copies: writers may write in place
            else:
                stage.mkdir()
            yield stage
        except BaseException:
            _remove(stage)
            raise
        old = _sibling(out, OLD)
        if out.exists():
            os.replace(out, old)
        os.replace(stage, out)
        if old.exists():
            _remove(old)


def _journal_of(first: Path) -> Path:
    return _sibling(first, JOURNAL)


def _finish_journal(journal: Path) -> None:
    """Complete the renames a journal lists (idempotent), then remove it."""
    try:
        moves = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        journal.unlink(missing_ok=True)   # torn journal: it was never complete, nothing moved
        return
    for staged, final in moves:
        staged, final = journal.parent / staged, journal.parent / final
        if staged.exists():
            os.replace(staged, final)
    journal.unlink(missing_ok=True)


def recover_files(first: str | Path) -> None:
    """Finish a journaled commit that was killed halfway (the files of ``commit_together``
    whose first file is ``first``); a no-op when none is pending."""
    journal = _journal_of(Path(first))
    if journal.exists():
        _finish_journal(journal)


def staged_name(final: Path) -> Path:
    """Where ``commit_together`` expects ``final``'s finished contents: ``.<name>.stage``."""
    return _sibling(final, STAGE)


@contextlib.contextmanager
def commit_together(*finals: str | Path, lock: str = "take") -> Iterator[list[Path]]:
    """Yield one staging path per file in ``finals`` (same folder); when the block succeeds
    they all replace their finals in one journaled step, else all are removed.

    ``lock`` on ``finals[0]``: "take" it (refused while another command holds it), "wait" for
    it (writers that take turns, e.g. shards of one sweep), or "held": the caller holds it
    already, for its whole run (``train``).

    A kill after the journal is written is finished by the next ``recover_files`` (train and
    checkpoint loading call it); before that, no final changed.
    """
    finals = [Path(f) for f in finals]
    if len({f.parent.resolve() for f in finals}) != 1:
        raise ValueError("files committed together must share a folder")
    for f in finals:
        prepare_output(f)
    journal = _journal_of(finals[0])
    torn = journal.with_name(journal.name + ".tmp")
    if lock not in ("take", "wait", "held"):
        raise ValueError(f"lock must be take, wait or held, got {lock!r}")
    with contextlib.nullcontext() if lock == "held" else locked(finals[0], wait=lock == "wait"):
        recover_files(finals[0])
        torn.unlink(missing_ok=True)     # a journal killed while written: nothing had moved
        staged = [staged_name(f) for f in finals]
        try:
            for s in staged:            # left by a writer killed before its journal
                for debris in [s, *temporaries(s)]:
                    debris.unlink(missing_ok=True)
            yield staged
            for s in staged:
                with open(s, "rb") as fh:
                    os.fsync(fh.fileno())
        except BaseException:
            for s in staged:
                s.unlink(missing_ok=True)
            raise
        torn.write_text(json.dumps([[s.name, f.name] for s, f in zip(staged, finals)]), encoding="utf-8")
        os.replace(torn, journal)
        _finish_journal(journal)
