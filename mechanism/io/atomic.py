"""Atomic file output: write to a temporary sibling, then rename, so no reader ever sees half a file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from mechanism.errors import MechanismError


def prepare_output(path: str | Path) -> Path:
    """Create ``path``'s parent folder and check it is writable.

    Raises:
        MechanismError: if the folder cannot be created or written, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise MechanismError(f"output {path} is a folder, expected a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MechanismError(f"cannot create output folder {path.parent}: {e.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise MechanismError(f"output folder {path.parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps ``path``'s suffix, so writers that append one (numpy) behave.
    """
    path = prepare_output(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
