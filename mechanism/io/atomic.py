"""Atomic file output: write to a temporary sibling, then rename, so no reader ever sees half a file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from mechanism.errors import MechanismError


def check_parent(target: Path) -> None:
    """Check, creating nothing, that ``target``'s folder exists or could be made, and written.

    Raises:
        MechanismError: an ancestor is a file, or the nearest existing one is not writable.
    """
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise MechanismError(f"cannot write {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MechanismError(f"cannot write {target}: folder {parent} is not writable")


def make_parent(target: Path) -> None:
    """Create ``target``'s folder after ``check_parent``."""
    check_parent(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MechanismError(f"cannot create output folder {target.parent}: {e.strerror}") from None


def prepare_output(path: str | Path) -> Path:
    """Create ``path``'s parent folder and check it is writable.

    Raises:
        MechanismError: if the folder cannot be created or written, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise MechanismError(f"output {path} is a folder, expected a file path")
    make_parent(path)
    return path


_TEMP_PREFIX, _TEMP_SUFFIX = ".{path.stem}.", ".tmp{path.suffix}"


def temporaries(path: str | Path) -> list[Path]:
    """Temporary files ``atomic_path`` made for ``path`` that are still there (a killed
    writer's); only a caller that holds ``path``'s lock may delete them."""
    path = Path(path)
    pattern = f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}".format(path=path)
    return sorted(path.parent.glob(pattern.replace("[", "[[]")))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps ``path``'s suffix, so writers that append one (numpy) behave.
    """
    path = prepare_output(path)
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX.format(path=path),
                               suffix=_TEMP_SUFFIX.format(path=path), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; outputs follow the user's umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
