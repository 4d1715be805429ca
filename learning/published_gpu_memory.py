"""Measured GPU memory of QLoRA fine-tuning that projects publish, with their settings: the check of
learning/cuda_memory.py (benchmarks/bench_cuda_memory.py, tests/test_cuda_memory.py).

Only measurements are listed. LLaMA-Factory's "hardware requirement" table is marked as estimated
by its authors, so it is not a check; torchtune's README table is measured but its recipe (a
compiled, chunked cross-entropy; torchao's NF4) holds less than a transformers step at the loss, so
it bounds the estimate from below rather than checks it (see `TORCHTUNE`).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class MaxContext:
    """The longest sequence a card of `card_gib` fits (None: not even a short one, 'OOM')."""

    card_gib: int
    max_tokens: int | None


UNSLOTH_LLAMA31_8B_HF_FA2 = [MaxContext(8, None), MaxContext(16, 2_551), MaxContext(24, 5_789),
                             MaxContext(80, 28_454)]
"""Unsloth, "Llama 3.3 + Llama 3.1 (8B) long context" (blog, Dec 2024; the same table in Unsloth's
README): the maximum context length of Llama-3.1-8B QLoRA fine-tuning per GPU memory, column
"Hugging Face + FA2" — transformers + peft + bitsandbytes nf4 (double quantisation), LoRA r = 32 on
every linear layer (q, k, v, o, gate, up, down), batch 1, sequences padded to the length, gradient
checkpointing, FlashAttention-2, measured on an A100 80GB. The recipe is taken to be the standard
QLoRA one, with peft's `prepare_model_for_kbit_training` (an assumption: the blog does not list its
script). The rows for 12, 40
and 48 GB are left out: only these four could be confirmed from a second copy of the table."""

UNSLOTH_RECIPE = {"rank": 32, "alpha": 32, "targets": "all-linear", "batch_size": 1, "dtype": "bfloat16",
                  "base_dtype": "nf4", "kbit_upcast": True}

TORCHTUNE_LLAMA31_8B_QLORA_GIB = 7.4
"""torchtune README, "Memory and training speed" (v0.3, 2024): Llama 3.1 8B QLoRA on one RTX 4090,
peak memory per GPU 7.4 GiB at batch 2 of sequences packed to 2048 tokens, torch.compile on, its
8B_qlora_single_device config (LoRA r = 8 on q, k, v, output and the MLP, activation checkpointing).
torchtune's loss runs compiled over output chunks, so the float32 logits a transformers step holds
(about 2 GiB at 4,096 tokens and a 128 k vocabulary) never exist at once there: a transformers-based
estimate is above it by design."""
