"""Data-parallel training steps on the CPU: a batch cut into micro-batches of whole images, each
micro-batch's forward, loss share and backward on one thread of a pool, every thread with one
intra-op thread.

The flow's layers are thin (20–72 input channels on a 28×28 grid): torch's intra-op threads
split every small operation and meet after each, and beside a busy core the thread that shares
it holds every meeting while the others spin. Here each pool thread takes whole micro-batches
from a queue through forward and backward, and the threads meet once per step, waiting without
spinning. That needs a loss that is a sum of per-image terms (the Tail-Aware Loss averages
per-image losses over the batch): a micro-batch's share of it, and so its gradient, needs no
other micro-batch.

The micro-batches are cut by size (``MICRO_BATCH`` images), not by thread count, and their
parameter gradients are added in micro-batch order; so a step's numbers do not depend on how
many threads ran it, nor on which thread ran which micro-batch: one thread, two, or a count
that follows the idle cores give bit-identical weights. They equal the unsplit computation up
to float rounding.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import torch

from mechanism.device import torch_threads
from mechanism.flow import PatchFlow, patch_nll

MICRO_BATCH = 8
"""Images per micro-batch on the CPU (the last one of a batch may be smaller)."""


def micro_batch_sizes(images: int, size: int = MICRO_BATCH) -> list[int]:
    """``images`` cut into pieces of ``size`` and a remainder (10, 4 → ``[4, 4, 2]``)."""
    return [size] * (images // size) + ([images % size] if images % size else [])


class ParallelStep:
    """Loss, per-patch NLL and parameter gradients of a batch ``(B, D, H, W)``, by micro-batches.

    ``step(x, loss_share)`` runs each micro-batch's forward, its share of the batch's loss and
    its backward, sets every parameter's ``.grad`` (replacing it) to the sum of the shares'
    gradients, and returns the loss (the sum of the shares) and the batch's NLL ``(B, H, W)``
    (nats per dimension, detached). ``loss_share(nll, images)`` gets a micro-batch's NLL and
    its images' slice of the batch and returns its share, a sum of per-image terms; it runs on
    pool threads, so it must not draw random numbers (draw them for the batch beforehand). On
    the CPU the batch is cut into ``MICRO_BATCH``-image pieces run by ``threads`` pool threads
    (the calling thread when 1); elsewhere (a GPU) the whole batch is one piece on the calling
    thread. Use it in a ``with`` block: on the CPU the calling thread runs at one intra-op
    thread inside it (the optimiser step between calls too, so no thread count reaches the
    numbers), and on leaving the pool is stopped, then the caller's count restored.

    Args:
        flow: the flow being trained (in train mode), every parameter used by its forward.
        max_threads: the pool's size (≥ 1); ``threads`` (at first this count) may be lowered
            and raised between steps (``CpuThreads``' auto policy).
        autocast: the dtype of the autocast every forward runs under, or ``None`` (autocast
            is per thread: a caller's own is passed on through this).
    """

    def __init__(self, flow: PatchFlow, max_threads: int, autocast: torch.dtype | None = None):
        if max_threads < 1:
            raise ValueError(f"a step needs at least one thread, got {max_threads}")
        self.flow, self.max_threads, self.autocast = flow, max_threads, autocast
        self.threads = max_threads
        self.params = [p for p in flow.parameters() if p.requires_grad]
        self.device_type = flow.cond.device.type
        parallel = self.device_type == "cpu" and max_threads > 1
        self._pool = (ThreadPoolExecutor(max_threads, thread_name_prefix="micro-batch",
                                         initializer=torch.set_num_threads, initargs=(1,))
                      if parallel else None)
        self._caller = contextlib.ExitStack()

    @property
    def threads(self) -> int:
        """Threads of the next steps, 1 to ``max_threads``."""
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        if not 1 <= n <= self.max_threads:
            raise ValueError(f"threads must lie in [1, {self.max_threads}], got {n}")
        self._threads = n

    def _map(self, fn, items: list[tuple]) -> list:
        """``[fn(*item) for item in items]``, the items taken from a queue by ``threads`` pool
        threads; every thread is waited for before the first error (in item order) is raised."""
        workers = min(self.threads, len(items)) if self._pool is not None else 1
        if workers == 1:
            return [fn(*item) for item in items]
        results, errors = [None] * len(items), [None] * len(items)
        queue, lock = iter(range(len(items))), threading.Lock()

        def drain():
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                try:
                    results[i] = fn(*items[i])
                except BaseException as error:      # re-raised on the calling thread below
                    errors[i] = error

        wait([self._pool.submit(drain) for _ in range(workers)])
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return results

    def _run(self, x: torch.Tensor, images: slice, loss_share
             ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """One micro-batch: its loss share, NLL (both detached) and parameter gradients."""
        with (torch.autocast(self.device_type, dtype=self.autocast) if self.autocast is not None
              else contextlib.nullcontext()):
            out = self.flow(x)
        nll = patch_nll(out)
        share = loss_share(nll, images)
        return share.detach(), nll.detach(), torch.autograd.grad(share, self.params)

    def __call__(self, x: torch.Tensor, loss_share) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = micro_batch_sizes(x.shape[0]) if self.device_type == "cpu" else [x.shape[0]]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        pieces = [(piece, slice(start, start + len(piece)), loss_share)
                  for piece, start in zip(x.split(sizes), starts)]
        shares, nlls, grads = zip(*self._map(self._run, pieces))
        for i, p in enumerate(self.params):
            total = grads[0][i].clone() if len(grads) > 1 else grads[0][i]
            for g in grads[1:]:
                total += g[i]
            p.grad = total
        loss = shares[0]
        for share in shares[1:]:
            loss = loss + share
        return loss, torch.cat(nlls)

    def busy_threads(self, batch: int) -> int:
        """Threads a step of ``batch`` images keeps busy: on the CPU at most one per
        micro-batch; 1 elsewhere."""
        if self.device_type != "cpu":
            return 1
        return min(self.threads, len(micro_batch_sizes(batch)))

    def close(self) -> None:
        """Stop the pool (waiting for its threads), then restore the caller's thread count."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._caller.close()

    def __enter__(self) -> ParallelStep:
        if self.device_type == "cpu":
            self._caller.enter_context(torch_threads(1))
        return self

    def __exit__(self, *exc) -> None:
        self.close()
