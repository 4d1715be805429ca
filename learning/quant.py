"""Bytes of a frozen base stored quantised, as bitsandbytes lays it out (an exact accounting).

QLoRA keeps the frozen linear layers of the blocks in 4-bit NormalFloat and computes in bf16;
embeddings, norms, LoRA adapters and the head stay in the compute dtype. Layouts:

- nf4 (Dettmers et al., "QLoRA", 2023, §3): 4 bits per weight, one absmax per block of 64 weights,
  double-quantised to 8 bits with one fp32 constant per 256 absmax values: 4 + 8/64 + 32/(64·256)
  = 4.127 bits per parameter (the paper's figure);
- int8 (Dettmers et al., "LLM.int8()", 2022): one byte per weight plus one fp32 scale per output row;
- float32 / bfloat16 / float16: 4 / 2 / 2 bytes per weight.
A real CUDA run with bitsandbytes would allocate these (plus its own workspaces); FLOPs and the
tensors crossing a cut do not change, since weights are dequantised to the compute dtype.
"""

from __future__ import annotations

import math

NF4_BLOCK = 64  # weights per absmax
NF4_DOUBLE_BLOCK = 256  # absmax values per fp32 constant (double quantisation)
FLOAT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
BASE_DTYPES = ("float32", "bfloat16", "float16", "int8", "nf4")


def quantised_weight_bytes(numel: int, out_features: int, base_dtype: str) -> int:
    """Bytes of one frozen linear weight of `numel` values and `out_features` rows in `base_dtype`."""
    if base_dtype in FLOAT_BYTES:
        return numel * FLOAT_BYTES[base_dtype]
    if base_dtype == "int8":
        return numel + 4 * out_features
    if base_dtype == "nf4":
        blocks = math.ceil(numel / NF4_BLOCK)
        return math.ceil(numel / 2) + blocks + 4 * math.ceil(blocks / NF4_DOUBLE_BLOCK)
    raise ValueError(f"unknown base dtype {base_dtype!r}; choose one of {', '.join(BASE_DTYPES)}")
