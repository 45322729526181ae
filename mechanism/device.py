"""The compute device: a user's choice ("auto", "cpu", "cuda", "cuda:N") as a ``torch.device``,
and the CPU thread count that follows the cores other processes leave idle."""
from __future__ import annotations

import contextlib
import math
import os
import time

import torch

from mechanism.errors import MechanismError


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        MechanismError: for an unknown name, ``cuda`` on a machine without CUDA, or a
            ``cuda:N`` that names no GPU of this machine.
    """
    choice = choice.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    index = choice.removeprefix("cuda:") if choice.startswith("cuda:") else None
    if choice == "cuda" or (index is not None and index.isdigit()):
        if not torch.cuda.is_available():
            raise MechanismError(f"--device {choice}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise MechanismError(f"--device {choice}: this machine has {count} GPU(s), "
                                 f"cuda:0 to cuda:{count - 1}")
        return torch.device(choice)
    raise MechanismError(f"unknown device {choice!r}: use auto, cpu, cuda or cuda:N")


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has bfloat16 kernels for this CPU (AVX-512 BW/VL/DQ, natively or by
    conversion, or an ARM CPU with bf16); without them bfloat16 matrix products and
    convolutions fall back to slow reference code and ``--precision fp32`` is likely faster."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


MAX_THREADS = 1024
THREADS_ENV = "MECHANISM_THREADS"
"""``auto``: long loops follow the idle cores; a number: that count; unset: the count in force."""


def threads_choice(raw: str | None) -> int | str | None:
    """A ``MECHANISM_THREADS`` / ``--threads`` value parsed: ``"auto"``, a count ≥ 1, or
    ``None`` for unset or empty.

    Raises:
        MechanismError: for any other value.
    """
    value = (raw or "").strip().lower()
    if value in ("", "auto"):
        return value or None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_THREADS:
        raise MechanismError(f"{THREADS_ENV}={raw!r} is neither auto nor a thread count in "
                             f"[1, {MAX_THREADS}]")
    return int(value)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask; all CPUs where that is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


class CpuThreads:
    """How many CPU threads a training uses, epoch by epoch: torch's count in force (or
    ``MECHANISM_THREADS=N``), or with ``MECHANISM_THREADS=auto`` (``--threads auto``) the cores
    other processes leave idle, re-measured.

    The training runs its micro-batches on up to that many threads (``mechanism.train.parallel``;
    at most one per micro-batch of 8 images), and its numbers do not depend on the count. In auto mode ``update()`` reads, from
    ``/proc/stat``, how many of this process's usable CPUs were busy with *other* processes
    since the previous call (their busy time minus this process's CPU time) and returns
    ``threads_for_idle_cores(...)``, never more than the starting count. Without it (and where
    ``/proc/stat`` is missing) ``update()`` returns the starting count.
    """

    def __init__(self):
        choice = threads_choice(os.environ.get(THREADS_ENV))
        self.limit = choice if isinstance(choice, int) else torch.get_num_threads()
        self.cpus = usable_cpus()
        self.fixed = choice != "auto" or busy_core_seconds(self.cpus) is None
        self._last = None if self.fixed else self._sample()

    def _sample(self) -> tuple[float, float, float]:
        return time.monotonic(), busy_core_seconds(self.cpus), time.process_time()

    def update(self) -> int:
        """The thread count for the next stretch of work."""
        if self.fixed:
            return self.limit
        now = self._sample()
        if now[0] - self._last[0] < 0.1:    # too short to tell: /proc/stat counts 10 ms ticks
            time.sleep(0.1 - (now[0] - self._last[0]))
            now = self._sample()
        if now[1] is None:                  # /proc/stat or a CPU's line went away: stay put
            self.fixed = True
            return self.limit
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        others_busy = ((busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        return threads_for_idle_cores(self.limit, len(self.cpus), others_busy)


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to ``n`` for the block, the earlier count back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype of the autocast in force on this thread for ``device_type``, or ``None``."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def threads_for_idle_cores(limit: int, cores: int, others_busy: float) -> int:
    """``max(1, min(limit, cores − ⌊others_busy + 0.5⌋))``; ``others_busy`` in cores."""
    return max(1, min(limit, cores - math.floor(max(0.0, others_busy) + 0.5)))


def busy_core_seconds(cpus: list[int] | None = None, stat: str = "/proc/stat") -> float | None:
    """Core-seconds spent busy since boot (everything but idle and iowait) on ``cpus`` (their
    ``cpuN`` lines of ``/proc/stat``; ``None``: the whole machine, its first line), or ``None``
    where the file or a CPU's line is missing (not Linux)."""
    try:
        with open(stat, encoding="ascii") as f:
            lines = {parts[0]: parts[1:] for parts in (line.split() for line in f) if parts}
        rows = [lines["cpu"]] if cpus is None else [lines[f"cpu{c}"] for c in cpus]
        total = 0
        for row in rows:
            ticks = [int(v) for v in row]
            total += sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    except (OSError, ValueError, KeyError):
        return None
    return total / os.sysconf("SC_CLK_TCK")
