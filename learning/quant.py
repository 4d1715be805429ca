"""Bytes of a frozen base stored quantised, as bitsandbytes lays it out (an exact accounting).

QLoRA keeps the frozen linear layers of the blocks in 4-bit NormalFloat and computes in bf16;
embeddings, norms, LoRA adapters and the head stay in the compute dtype. Layouts:

- nf4 (Dettmers et al., "QLoRA", 2023, §3): 4 bits per weight, one absmax per block of 64 weights,
  double-quantised to 8 bits with one fp32 constant per 256 absmax values: 4 + 8/64 + 32/(64·256)
  = 4.127 bits per parameter (the paper's figure). Each quantised tensor also keeps its code tables
  (16 fp32 NF4 levels, 256 fp32 levels of the 8-bit absmax code) and one fp32 offset;
- int8 (Dettmers et al., "LLM.int8()", 2022): one byte per weight plus one fp32 scale per output row;
- float32 / bfloat16 / float16: 4 / 2 / 2 bytes per weight.

A quantised weight cannot be multiplied as it is: for each matmul of a training step (the forward,
and the input gradient of the backward) bitsandbytes dequantises it into the compute dtype and calls
`linear` (on a CPU always; on CUDA whenever the batch has more than 256 rows), so a step holds one
dequantised weight at a time beside its activations — with the fp32 absmax values of nf4's double
quantisation (a float base stored below the compute precision is cast likewise).
`dequantised_bytes` is that transient. FLOPs and the tensors crossing a cut do not
change. Both are checked against bitsandbytes itself, its stored tensors, the checkpoint
transformers writes and the allocator's peak of a real quantised step (learning/bnb_reference.py,
tests/test_quantised.py).
"""

from __future__ import annotations

import math

NF4_BLOCK = 64  # weights per absmax
NF4_DOUBLE_BLOCK = 256  # absmax values per fp32 constant (double quantisation)
NF4_CONSTANT_BYTES = 4 * (16 + 256 + 1)  # per tensor: the NF4 code, the absmax code, the absmax offset (fp32)
FLOAT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
BASE_DTYPES = ("float32", "bfloat16", "float16", "int8", "nf4")
QUANTISED = ("int8", "nf4")


def quantised_weight_bytes(numel: int, out_features: int, base_dtype: str) -> int:
    """Bytes of one frozen linear weight of `numel` values and `out_features` rows in `base_dtype`."""
    if base_dtype in FLOAT_BYTES:
        return numel * FLOAT_BYTES[base_dtype]
    if base_dtype == "int8":
        return numel + 4 * out_features
    if base_dtype == "nf4":
        blocks = math.ceil(numel / NF4_BLOCK)
        return math.ceil(numel / 2) + blocks + 4 * math.ceil(blocks / NF4_DOUBLE_BLOCK) + NF4_CONSTANT_BYTES
    raise ValueError(f"unknown base dtype {base_dtype!r}; choose one of {', '.join(BASE_DTYPES)}")


def dequantised_bytes(numel: int, base_dtype: str, compute_dtype: str) -> int:
    """Bytes a step allocates to multiply by one stored weight of `numel` values: the weight in the
    compute dtype (plus nf4's absmax values in fp32), cast or dequantised; 0 for a base stored in the
    compute dtype itself."""
    if base_dtype in ("auto", "", compute_dtype):
        return 0
    extra = 4 * math.ceil(numel / NF4_BLOCK) if base_dtype == "nf4" else 0
    return numel * FLOAT_BYTES[compute_dtype] + extra
