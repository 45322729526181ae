"""A dispatch-level recorder of the dtypes matrix products and convolutions answer in."""
from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode


class ProductDtypes(TorchDispatchMode):
    """``with ProductDtypes() as rec:`` — ``rec.seen`` is the set of output dtypes of every
    ``mm``, ``addmm``, ``bmm``, ``baddbmm`` and convolution run on this thread inside the block (below
    autocast, so it sees the arithmetic that really ran)."""

    OPS = {"mm", "addmm", "bmm", "baddbmm", "convolution"}

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ in self.OPS:
            self.seen.add(out.dtype)
        return out
