"""Attention on the meta device as a CPU runs it, so that a weight-free step saves what a real one saves.

On a CPU, `scaled_dot_product_attention` dispatches to a fused kernel (`_scaled_dot_product_flash_attention_for_cpu`,
which keeps the output and the log-sum-exp for backward) whenever it can — no dropout, a supported dtype —
while on the meta device it always takes the math path, which keeps the attention probabilities
(batch × heads × seq² values). Within `as_on_cpu()`, attention on meta tensors asks torch which kernel
a CPU would choose for the same dtypes, mask, dropout and causality (`torch._fused_sdp_choice` on tiny
CPU probes) and runs that kernel's meta implementation. FLOPs are unaffected (learning/flops.py
counts every kernel alike); bytes saved for backward then match a real CPU step (tests).
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn import functional as F

_FLASH = 1  # torch.nn.attention.SDPBackend.FLASH_ATTENTION


def _probe(t: torch.Tensor | None) -> torch.Tensor | None:
    if t is None:
        return None
    shape = [1] * (t.dim() - 2) + [min(t.shape[-2], 2), min(t.shape[-1], 2) if t.dtype == torch.bool else t.shape[-1]]
    if t.dim() == 4 and t.dtype != torch.bool and t.shape[-1] > 2:  # q, k, v: keep heads and head size
        shape = [1, t.shape[1], 2, t.shape[-1]]
    return torch.zeros(shape, dtype=t.dtype, requires_grad=t.requires_grad)


def _cpu_would_use_flash(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa) -> bool:
    mask = None if attn_mask is None else torch.zeros((1, 1, 2, 2), dtype=attn_mask.dtype)
    choice = torch._fused_sdp_choice(_probe(query), _probe(key), _probe(value), mask, dropout_p, is_causal,
                                     scale=scale, enable_gqa=enable_gqa)
    return int(choice) == _FLASH


@contextlib.contextmanager
def as_on_cpu():
    """Within the block, meta-device attention runs the kernel a CPU would run."""
    original = F.scaled_dot_product_attention

    def attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if query.device.type == "meta" and _cpu_would_use_flash(query, key, value, attn_mask, dropout_p, is_causal,
                                                                scale, enable_gqa):
            return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)[0]
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)

    F.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
