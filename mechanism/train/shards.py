"""Data-parallel training steps on the CPU: a batch split into shards of whole images, each
shard's forward and backward on its own thread.

The flow's layers are thin (20–72 input channels on a 28×28 grid), so torch's intra-op
threads split every small operation and meet after each one; beside a busy core the thread
that shares it holds every meeting while the others spin. Shards keep each thread on its own
images through the whole forward and backward and meet twice per step, waiting without
spinning. Each shard runs with ``threads // shards`` intra-op threads (1 when the batch has at
least as many images as threads); the parameter gradients are the shards' sums, added in shard
order, so a step's numbers depend on the thread count and batch size only (bit-identical reruns).

The loss is computed on the whole batch's per-patch NLL (its tail selection is per image, its
random draws in one place), so a step is the same computation as unsharded, up to rounding.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import torch

from mechanism.flow import PatchFlow, patch_nll


def shard_sizes(images: int, threads: int) -> list[int]:
    """Images per shard: ``min(images, threads)`` shards, sizes differing by at most one,
    larger first (10 images, 4 threads → ``[3, 3, 2, 2]``)."""
    shards = max(1, min(images, threads))
    base, extra = divmod(images, shards)
    return [base + (i < extra) for i in range(shards)]


class ShardedStep:
    """Per-patch NLL and parameter gradients of a batch ``(B, D, H, W)``, computed in shards.

    ``forward(x)`` returns the batch's NLL ``(B, H, W)`` as a leaf that requires grad (nats per
    dimension); compute the loss from it, call ``loss.backward()``, then ``backward(nll)`` sets
    every parameter's ``.grad`` (replacing it) from ``nll.grad``. On a non-CPU device, or with
    one thread, the single shard runs on the calling thread.

    Args:
        flow: the flow being trained (in train mode).
        max_threads: the most CPU threads a step may use (≥ 1); ``threads`` (at first this
            count) may be lowered and raised between steps (``CpuThreads``' auto policy).
        autocast: the dtype of the autocast each shard's forward runs under, or ``None``
            (autocast state is per thread, so a caller's own autocast is passed on here).
    """

    def __init__(self, flow: PatchFlow, max_threads: int, autocast: torch.dtype | None = None):
        if max_threads < 1:
            raise ValueError(f"a step needs at least one thread, got {max_threads}")
        self.flow, self.max_threads, self.autocast = flow, max_threads, autocast
        self.threads = max_threads
        self.params = [p for p in flow.parameters() if p.requires_grad]
        self.device_type = next(flow.buffers()).device.type
        parallel = self.device_type == "cpu" and max_threads > 1
        self._pool = ThreadPoolExecutor(max_threads, thread_name_prefix="shard") if parallel else None
        self._graphs: list[torch.Tensor] = []

    @property
    def threads(self) -> int:
        """CPU threads of the next steps, 1 to ``max_threads``."""
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        if not 1 <= n <= self.max_threads:
            raise ValueError(f"threads must lie in [1, {self.max_threads}], got {n}")
        self._threads = n

    def _map(self, fn, *args) -> list:
        if self._pool is None or len(args[0]) == 1:
            return [fn(*a) for a in zip(*args)]
        return list(self._pool.map(fn, *args))

    def _intra_op(self, shards: int) -> contextlib.AbstractContextManager:
        if self._pool is None:
            return contextlib.nullcontext()
        return _torch_threads(self.threads // shards)

    def _shard_nll(self, x: torch.Tensor, shards: int) -> torch.Tensor:
        with self._intra_op(shards):
            with (torch.autocast(self.device_type, dtype=self.autocast) if self.autocast is not None
                  else contextlib.nullcontext()):
                out = self.flow(x)
            return patch_nll(out)

    def _shard_grads(self, nll: torch.Tensor, grad: torch.Tensor, shards: int) -> tuple:
        with self._intra_op(shards):
            return torch.autograd.grad(nll, self.params, grad, allow_unused=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threads = self.threads if self._pool is not None else 1
        pieces = list(x.split(shard_sizes(x.shape[0], threads)))
        self._graphs = self._map(self._shard_nll, pieces, [len(pieces)] * len(pieces))
        return torch.cat([g.detach() for g in self._graphs]).requires_grad_()

    def backward(self, nll: torch.Tensor) -> None:
        if nll.grad is None:
            raise RuntimeError("backward(nll) needs nll.grad: call loss.backward() first")
        graphs, self._graphs = self._graphs, []
        grads = self._map(self._shard_grads, graphs, list(nll.grad.split([len(g) for g in graphs])),
                          [len(graphs)] * len(graphs))
        for i, p in enumerate(self.params):
            parts = [g[i] for g in grads if g[i] is not None]
            total = parts[0] if parts else None
            for part in parts[1:]:
                total = total + part
            p.grad = total

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def __enter__(self) -> ShardedStep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch's intra-op thread count of the calling thread set to ``n`` for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
