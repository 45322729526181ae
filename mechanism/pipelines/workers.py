"""Running the shards of a batch on several workers: processes of this machine, or the jobs of a
Slurm array (or submitit's local executor, which runs the same jobs as local processes).

A worker is a picklable call ``fn(job)``; the jobs write their results into a shared folder,
so the caller only waits. While it waits, ``poll()`` is called every ``poll_seconds`` (the study
counts finished runs there and prints its progress line). A failed job raises here after the
others finished, with its error; what the finished ones wrote stays, so a rerun resumes.

Why submitit: it is the launcher the PyTorch research tools use (Detectron2, fairseq,
DINO), maps a Python function over a Slurm job array without writing sbatch scripts, pickles
the job and its result and re-raises a job's exception on the submitting side; its local
executor runs the same path without a cluster. It is an optional dependency
(``pip install 'tailflow-mechanism[cluster]'``).
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from mechanism.errors import MechanismError

CLUSTERS = ("slurm", "local")   # submitit's executors


@dataclass(frozen=True)
class Launch:
    """How to run the jobs: ``workers`` local processes, or a submitit ``cluster`` whose
    executor takes ``options`` (``update_parameters``, e.g. slurm_partition, timeout_min,
    gpus_per_node) and writes its logs under ``folder``."""
    workers: int = 1
    cluster: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    folder: Path | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise MechanismError(f"workers must be ≥ 1, got {self.workers}")
        if self.cluster is not None and self.cluster not in CLUSTERS:
            raise MechanismError(f"unknown cluster {self.cluster!r}: use one of {', '.join(CLUSTERS)}")
        if self.options and self.cluster is None:
            raise MechanismError("cluster options need --cluster")

    @property
    def inline(self) -> bool:
        """One worker in this process (no launcher)."""
        return self.workers == 1 and self.cluster is None


def parse_option(text: str) -> tuple[str, Any]:
    """``"timeout_min=120"`` → ``("timeout_min", 120)`` (ints and floats parsed, else text).

    Raises:
        MechanismError: not KEY=VALUE.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise MechanismError(f"a cluster option is KEY=VALUE (e.g. slurm_partition=gpu), got {text!r}")
    for kind in (int, float):
        try:
            return key.strip(), kind(value)
        except ValueError:
            pass
    return key.strip(), value


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], launch: Launch,
             poll: Callable[[], None] = lambda: None, poll_seconds: float = 10.0) -> list[Any]:
    """``[fn(job) for job in jobs]`` on ``launch``'s workers; results in job order.

    Raises:
        MechanismError: submitit missing, or a job failed (its error, after the rest finished).
    """
    if launch.inline:
        return [fn(job) for job in jobs]
    if launch.cluster is None:
        return _processes(fn, jobs, launch.workers, poll, poll_seconds)
    return _submitit(fn, jobs, launch, poll, poll_seconds)


def _processes(fn, jobs, workers: int, poll, poll_seconds: float) -> list[Any]:
    context = multiprocessing.get_context("spawn")   # no forked torch/OpenMP state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            futures = [pool.submit(fn, job) for job in jobs]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=poll_seconds, return_when=FIRST_EXCEPTION)
                poll()
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    for f in pending:
                        f.cancel()
                    wait(pending)
                    raise _job_error(failed[0].exception(), "")
            return [f.result() for f in futures]
        except BaseException:      # Ctrl-C, SIGTERM (the CLI raises it as an interrupt), a failure
            _stop_workers(pool)
            raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """No worker outlives its caller: an orphaned worker would go on writing the runs folder
    after the lock on it is released."""
    pool.shutdown(wait=False, cancel_futures=True)
    for child in multiprocessing.active_children():
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(timeout=10)


def _submitit(fn, jobs, launch: Launch, poll, poll_seconds: float) -> list[Any]:
    try:
        import submitit
    except ImportError:
        raise MechanismError("--cluster needs submitit: pip install 'tailflow-mechanism[cluster]'") from None
    executor = submitit.AutoExecutor(folder=str(launch.folder or "submitit"), cluster=launch.cluster)
    try:
        executor.update_parameters(**dict(launch.options))
    except (TypeError, ValueError) as e:
        raise MechanismError(f"bad cluster option ({e})") from None
    submitted = executor.map_array(fn, list(jobs))
    try:
        while not all(job.done() for job in submitted):
            time.sleep(poll_seconds)
            poll()
    except BaseException:                          # Ctrl-C: no job keeps writing the runs folder
        for job in submitted:
            job.cancel(check=False)
        raise
    poll()
    results = []
    for job in submitted:
        try:
            results.append(job.result())
        except Exception as e:                     # submitit re-raises the job's error
            raise _job_error(e, f" (its log: {job.paths.stderr})") from None
    return results


def _job_error(error: BaseException, where: str) -> MechanismError:
    """One line: the worker's own error message (a library error as it is), and its log."""
    if isinstance(error, MechanismError):
        return MechanismError(f"a worker failed: {error}{where}")
    if isinstance(error, BrokenProcessPool):
        return MechanismError("a worker process died (killed, or out of memory?); the runs it "
                              "finished are kept: run the same command again to resume")
    text = str(error).strip().splitlines()
    return MechanismError(f"a worker failed: {type(error).__name__}: {text[-1] if text else ''}{where}")
