"""The reproducibility manifest written into every output folder (SPEC §6), and the package
versions it and every checkpoint record."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from mechanism.io.atomic import write_text


def package_versions() -> dict[str, str]:
    """Versions of the packages whose behaviour a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy  # noqa: E401  (imported here: only their versions are needed)
    import scipy
    import sklearn
    import timm
    try:
        ours = version("tailflow-mechanism")
    except PackageNotFoundError:
        ours = "source"
    found = {"tailflow-mechanism": ours, "python": platform.python_version(),
             "torch": torch.__version__, "timm": timm.__version__, "numpy": numpy.__version__,
             "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}
    return {k: str(v) for k, v in found.items()}  # plain str: torch's version is a str subclass


CODE_PATHS = ("mechanism", "cli", "setup.cfg", "pyproject.toml")   # what "-dirty" looks at


def git_commit() -> str | None:
    """The commit of the source tree this package runs from (``-dirty`` when its code,
    ``CODE_PATHS``, differs from the commit; outputs and documents do not count), or None
    outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no",
                            "--", *(f":/{path}" for path in CODE_PATHS)],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def code_digest() -> str:
    """SHA-256 of the running code: every ``.py`` file of the ``mechanism`` and ``cli``
    packages, by relative path and content. Outputs, documents and tests do not count, so a
    commit that changes only those leaves it (and the reports keyed on it) as they were."""
    cli = importlib.util.find_spec("cli")
    roots = {"mechanism": Path(__file__).resolve().parents[1],
             "cli": None if cli is None or cli.origin is None else Path(cli.origin).parent}
    digest = hashlib.sha256()
    for name, root in roots.items():
        for path in sorted(root.rglob("*.py")) if root is not None else ():
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def command_line() -> str:
    """This process's command line, the console script named ``mechanism`` also when it runs
    as ``python -m cli``."""
    name = Path(sys.argv[0]).name
    return " ".join(["mechanism" if name in ("__main__.py", "mechanism") else name, *sys.argv[1:]])


def build_manifest(device: torch.device, seeds: dict[str, int | list[int]], checkpoints: dict[str, dict],
                   data: dict[str, str], extra: dict | None = None) -> dict:
    """Command line, versions, device, seeds, checkpoint and data hashes, git commit."""
    return {
        "command": command_line(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch_threads": torch.get_num_threads(),
        "seeds": seeds, "checkpoints": checkpoints, "data": data,
        "git_commit": git_commit(),
        **(extra or {}),
    }


def write_manifest(folder: str | Path, manifest: dict, name: str = "manifest.json") -> Path:
    return write_text(Path(folder) / name, json.dumps(manifest, indent=2) + "\n")
