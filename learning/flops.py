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
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, bmm_flop, sdpa_backward_flop_count, sdpa_flop_count

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


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that counts every attention kernel by the same convention."""
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
