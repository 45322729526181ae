"""Data-parallel training steps on the CPU: a batch cut into micro-batches of whole images, each
micro-batch's forward and backward on one thread of a pool, every thread with one intra-op
thread.

The flow's layers are thin (20–72 input channels on a 28×28 grid): torch's intra-op threads
split every small operation and meet after each, and beside a busy core the thread that shares
it holds every meeting while the others spin. Here each pool thread takes whole micro-batches
from a queue through the forward, then through the backward, and the threads meet twice per
step, waiting without spinning (where micro-batches outnumber threads, a thread slowed by a
neighbour takes fewer of them; at the default batch of 16 there are two per step).

The micro-batches are cut by size (``MICRO_BATCH`` images), not by thread count, and their
parameter gradients are added in micro-batch order; so a step's numbers do not depend on how
many threads ran it, nor on which thread ran which micro-batch: one thread, two, or a count
that follows the idle cores give bit-identical weights. The loss is computed on the whole
batch's per-patch NLL (tail selection per image, random draws in one place): the step is the
unsplit computation up to float rounding.
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
    """Per-patch NLL and parameter gradients of a batch ``(B, D, H, W)``, by micro-batches.

    ``forward(x)`` returns the batch's NLL ``(B, H, W)`` (nats per dimension) as a leaf that
    requires grad; compute the loss from it, call ``loss.backward()``, then ``backward(nll)``
    sets every parameter's ``.grad`` (replacing it) from ``nll.grad``. On the CPU the batch is
    cut into ``MICRO_BATCH``-image pieces run by ``threads`` pool threads (the calling thread
    when 1); elsewhere (a GPU) the whole batch is one piece on the calling thread. Use it in a
    ``with`` block: on the CPU the calling thread runs at one intra-op thread inside it (the
    loss and optimiser step between ``forward`` and ``backward`` too, so no thread count
    reaches the numbers), and on leaving the pool is stopped, then the caller's count restored.

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
        self._nlls: list[torch.Tensor] = []    # the micro-batches' NLLs, their graphs attached
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

    def _nll(self, x: torch.Tensor) -> torch.Tensor:
        with (torch.autocast(self.device_type, dtype=self.autocast) if self.autocast is not None
              else contextlib.nullcontext()):
            out = self.flow(x)
        return patch_nll(out)

    def _grads(self, nll: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(nll, self.params, grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = micro_batch_sizes(x.shape[0]) if self.device_type == "cpu" else [x.shape[0]]
        self._nlls = self._map(self._nll, [(piece,) for piece in x.split(sizes)])
        return torch.cat([n.detach() for n in self._nlls]).requires_grad_()

    def backward(self, nll: torch.Tensor) -> None:
        if nll.grad is None:
            raise RuntimeError("backward(nll) needs nll.grad: call loss.backward() first")
        nlls, self._nlls = self._nlls, []
        grads = self._map(self._grads, list(zip(nlls, nll.grad.split([len(n) for n in nlls]))))
        for i, p in enumerate(self.params):
            total = grads[0][i].clone() if len(grads) > 1 else grads[0][i]
            for g in grads[1:]:
                total += g[i]
            p.grad = total

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
