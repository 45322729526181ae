"""The compute device: a user's choice ("auto", "cpu", "cuda", "cuda:N") as a ``torch.device``,
and the CPU thread count that follows the cores other processes leave idle."""
from __future__ import annotations

import os
import time

import torch

from mechanism.errors import MechanismError


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        MechanismError: for an unknown name, or ``cuda`` on a machine without CUDA.
    """
    choice = choice.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MechanismError(f"--device {choice}: CUDA is not available on this machine")
        return torch.device(choice)
    raise MechanismError(f"unknown device {choice!r}: use auto, cpu, cuda or cuda:N")


THREADS_ENV = "MECHANISM_THREADS"
"""``auto`` (or unset): long loops follow the idle cores; a number: that many threads, fixed."""


class CpuThreads:
    """torch's CPU threads for long loops: the cores other processes leave idle, re-measured.

    OpenMP threads that share a core with a busy process hold every parallel region to the
    slowed thread's pace while the others spin: beside one busy core, a 2-thread epoch took
    ≈ 3.5× its idle time here and a 1-thread epoch 1.4× (``bench/flow_speed.py``). ``update()``
    reads, from ``/proc/stat``, how many cores were busy with *other* processes since the
    previous call (the machine's busy time minus this process's CPU time) and sets
    ``torch.set_num_threads(threads_for_idle_cores(...))``; it never exceeds the count in force
    when the object was made, and ``restore()`` puts that count back.

    Thread counts change the rounding of parallel reductions (≈ 1e-7 relative in a trained
    flow's NLL), so reruns are bit-identical only at equal counts. The count in force stays
    unchanged where the environment variable ``MECHANISM_THREADS`` holds a number (the CLI's
    ``--threads N`` sets both) and where ``/proc/stat`` is missing.
    """

    def __init__(self):
        self.limit = torch.get_num_threads()
        self.fixed = os.environ.get(THREADS_ENV, "auto") != "auto" or busy_core_seconds() is None
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        busy = busy_core_seconds()
        return None if busy is None else (time.monotonic(), busy, time.process_time())

    def update(self) -> int:
        """Set and return the thread count for the next stretch of work."""
        if self.fixed:
            return torch.get_num_threads()
        now = self._sample()
        if now[0] - self._last[0] < 0.1:    # too short to tell: /proc/stat counts 10 ms ticks
            time.sleep(0.1 - (now[0] - self._last[0]))
            now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        threads = threads_for_idle_cores(self.limit, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))
        torch.set_num_threads(threads)
        return threads

    def restore(self) -> None:
        torch.set_num_threads(self.limit)


def threads_for_idle_cores(limit: int, others_busy: float) -> int:
    """``max(1, min(limit, cores − round(others_busy)))``; ``others_busy`` in cores."""
    return max(1, min(limit, (os.cpu_count() or 1) - round(max(0.0, others_busy))))


def busy_core_seconds(stat: str = "/proc/stat") -> float | None:
    """Core-seconds all processes have spent busy since boot (``/proc/stat``'s first line:
    everything but idle and iowait), or ``None`` where the file is missing (not Linux)."""
    try:
        with open(stat, encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
