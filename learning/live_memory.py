"""Bytes of the tensors alive at each moment of a step, on any device, the meta device included.

A CPU has no allocator statistics and the meta device has no allocator at all, so a profile needs
another way to see a step's transient memory (the intermediates that live during a forward or a
backward and die before the step ends). `LiveBytes` is a `TorchDispatchMode`: every storage an
operator creates is counted when it appears and uncounted when it is freed (a weak reference to
the storage), so `live` and `peak` follow the step op by op. Outputs that alias an input (views,
in-place ops) create nothing. Storages that existed before the mode was entered (parameters, the
inputs) are not counted.

What it cannot see: buffers a kernel allocates and frees inside one operator (scratch space
below the dispatcher: on this project's CPUs a bfloat16 linear's forward and backward allocate 7 %
more than their tensors so, a float32 one nothing) — except those it is told of (`scratch`: bytes
an operator on a given storage allocates while it runs, such as the dequantised copy of a
quantised weight) — and tensors that are not strided (sparse or nested ones have no single
storage): the operators that made those are listed in `uncounted`, and a profile warns about them.
The profile's figures are checked against the CPU allocator's measured peak
(learning/measured_memory.py) in the tests.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of storages created while active; `live` now, `peak` since `reset_peak()`."""

    def __init__(self, scratch: dict[int, int] | None = None):
        super().__init__()
        self.scratch = scratch or {}  # storage -> bytes an operator on it allocates and frees inside itself
        self.live = 0
        self.peak = 0
        self._tracked: dict[int, tuple[int, weakref.ref]] = {}  # storage -> (creation number, its weak ref)
        self.created = 0  # storages created so far: `is_newer(key, mark)` tells what a phase created
        self.uncounted: set[str] = set()  # operators whose (non-strided) outputs were not counted

    def is_newer(self, key: int, mark: int) -> bool:
        """Whether the live storage `key` was created after `self.created` was `mark`."""
        entry = self._tracked.get(key)
        return entry is not None and entry[0] >= mark

    def reset_peak(self) -> None:
        self.peak = self.live

    def _free(self, key: int, nbytes: int) -> None:
        if self._tracked.pop(key, None) is not None:
            self.live -= nbytes

    def _track(self, storage) -> None:
        key = storage._cdata
        if key in self._tracked:
            return
        nbytes = storage.nbytes()
        ref = weakref.ref(storage, lambda _ref, key=key, nbytes=nbytes: self._free(key, nbytes))
        self._tracked[key] = (self.created, ref)
        self.created += 1
        self.live += nbytes
        self.peak = max(self.peak, self.live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and t.layout == torch.strided}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            if t.layout != torch.strided:
                self.uncounted.add(str(func))
            elif t.untyped_storage()._cdata not in inputs:
                self._track(t.untyped_storage())
        if self.scratch:
            # an operator on a weight that must first be dequantised holds that copy beside its inputs
            # and output while it runs (learning/quant.py)
            extra = max((self.scratch.get(key, 0) for key in inputs), default=0)
            self.peak = max(self.peak, self.live + extra)
        return out
