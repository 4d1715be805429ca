"""FLOP counting that depends neither on the device nor on the attention kernel.

`torch.utils.flop_counter` has formulas for the CUDA attention kernels but none for the fused
CPU kernel that `scaled_dot_product_attention` dispatches to (`_scaled_dot_product_flash_attention_for_cpu`),
so on a CPU attention counted 0 FLOPs (a third of a Llama step at 2,048 tokens). And its backward
formula for the fused kernels adds the recomputation of the scores (Q·Kᵀ) that a flash kernel does,
which eager attention does not. The convention here, for every kernel on every device, is the
algorithm's: forward Q·Kᵀ and P·V (torch's sdpa_flop_count), backward the four gradient matmuls
(dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q), i.e. exactly what eager (explicit matmul)
attention counts — the test holds the two against each other. 2 FLOPs per multiply-add, as torch
counts them; softmax, masking and norms are not counted.

torch's counter also replaces every operator it has no formula for by its composite decomposition
when there is one, so that matmuls inside composites are counted. For an operator that has its own
kernel on the device (`silu_backward` on a CPU, for instance) that changes what the step allocates
(the decomposition materialises intermediates the kernel does not), and a profile measures memory
in the same step. Here such operators run their kernel, as they do outside the counter; only
operators without a kernel of their own are decomposed.
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode, bmm_flop, sdpa_backward_flop_count, sdpa_flop_count

_aten = torch.ops.aten


def _sdpa_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's count less its first term, the recomputed scores Q·Kᵀ."""
    b, h, s_q, d = query_shape
    s_k = key_shape[2]
    recompute = bmm_flop((b * h, s_q, d), (b * h, d, s_k))
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape) - recompute


EXTRA_FORMULAS = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_forward,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward,
    _aten._scaled_dot_product_flash_attention_backward: _sdpa_backward,
    _aten._scaled_dot_product_efficient_attention_backward: _sdpa_backward,
    _aten._scaled_dot_product_cudnn_attention_backward: _sdpa_backward,
}


_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta"}


def _has_own_kernel(func, args, kwargs) -> bool:
    """Whether `func` has a kernel of its own for the device its tensors are on."""
    for t in tree_leaves((args, kwargs)):
        if isinstance(t, torch.Tensor):
            key = _DISPATCH_KEYS.get(t.device.type)
            return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), key)
    return False


class _KernelFirstMode(_FlopCounterMode):
    """torch's counting mode, except that an operator with its own kernel on the device runs it."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if (isinstance(func, torch._ops.OpOverload) and func._overloadpacket not in self.counter.flop_registry
                and _has_own_kernel(func, args, kwargs)):
            return func(*args, **(kwargs or {}))
        return super().__torch_dispatch__(func, types, args, kwargs)


class _Counter(FlopCounterMode):
    def __enter__(self):
        self.flop_counts.clear()
        self.mod_tracker.__enter__()
        self.mode = _KernelFirstMode(self)
        self.mode.__enter__()
        return self


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that counts every attention kernel by the same convention and runs an
    operator's own kernel where it has one."""
    return _Counter(display=False, custom_mapping=EXTRA_FORMULAS)
