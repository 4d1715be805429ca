"""The GPU memory estimate (profile + CUDA terms, learning/cuda_memory.py) against measured peaks
that projects publish (learning/published_gpu_memory.py).

For Unsloth's "Hugging Face + FA2" column (Llama-3.1-8B QLoRA, r = 32 on every linear layer, batch 1,
checkpointing): the longest sequence each card fits, estimated with the terms added one kind at a
time, against the published one; and the estimated peak at the published length against the card.
Then torchtune's single measured peak, which its compiled chunked loss keeps below any
transformers-based estimate. Weight-free: nothing is downloaded, nothing runs on a GPU (about 1 min).

    .venv/bin/python benchmarks/bench_cuda_memory.py
"""

from __future__ import annotations

import dataclasses

from _common import print_table

from splitsim.learning import LoraSpec, ModelSpec
from splitsim.learning.cuda_memory import GIB, Recipe, fitting_length, whole_model_cuda_peak
from splitsim.learning.published_gpu_memory import (TORCHTUNE_LLAMA31_8B_QLORA_GIB, UNSLOTH_LLAMA31_8B_HF_FA2,
                                           UNSLOTH_RECIPE)

SPEC = ModelSpec("llama-3.1-8b", task="causal_lm", weights="none", dtype="bfloat16", base_dtype="nf4")
PROBES = (1024, 8192)


def variants(peak):
    """The estimate with the terms added one kind at a time: tensors only; + the device's (context,
    allocator slack); + the recipe's (peft's kbit preparation: float32 embeddings, head, residual stream)."""
    bare = dataclasses.replace(peak, kbit_upcast=0, kbit_activations=0)
    return {"tensors only": dataclasses.replace(bare, slack_fraction=0.0, context=0).device,
            "+ context, slack": bare.device, "+ recipe": peak.device}


def unsloth_rows() -> list[list[object]]:
    r = UNSLOTH_RECIPE
    lora = LoraSpec(rank=r["rank"], alpha=r["alpha"], target_modules=r["targets"], train_head=False)
    recipe = Recipe(kbit_upcast=r["kbit_upcast"])
    probes = [variants(whole_model_cuda_peak(SPEC, lora, r["batch_size"], s, recipe)) for s in PROBES]
    rows = []
    for row in UNSLOTH_LLAMA31_8B_HF_FA2:
        card = row.card_gib * GIB
        out = [row.card_gib, row.max_tokens or "OOM"]
        for name in probes[0]:
            fits = fitting_length(PROBES, [p[name] for p in probes], card)
            out.append(fits or "OOM")
            if row.max_tokens and fits:
                out.append(f"{fits / row.max_tokens - 1:+.0%}")
            else:
                out.append("agrees" if (fits is None) == (row.max_tokens is None) else "differs")
        if row.max_tokens:
            at = whole_model_cuda_peak(SPEC, lora, r["batch_size"], row.max_tokens, recipe)
            out += [variants(at)["tensors only"] / card, at.device / card]
        else:
            out += ["", ""]
        rows.append(out)
    return rows


def main() -> None:
    print_table("Llama-3.1-8B QLoRA (r = 32, all linear, batch 1, checkpointing): the longest sequence per card, "
                "Unsloth's measured 'Hugging Face + FA2' vs the estimate; and the estimated peak at the published "
                "length / the card",
                ["card GiB", "published", "tensors only", "vs", "+ context, slack", "vs", "+ recipe", "vs",
                 "peak/card (tensors)", "peak/card (all)"], unsloth_rows())
    lora = LoraSpec(rank=8, alpha=16, target_modules="all-linear", train_head=False)
    peak = whole_model_cuda_peak(SPEC, lora, 2, 2048, Recipe())
    print_table("torchtune's measured peak (Llama 3.1 8B QLoRA, r = 8, batch 2 x 2048 packed, compiled chunked loss)",
                ["published GiB", "estimate GiB (a transformers step)", "ratio", "of it float32 logits GiB"],
                [[TORCHTUNE_LLAMA31_8B_QLORA_GIB, peak.reserved / GIB, peak.reserved / GIB / TORCHTUNE_LLAMA31_8B_QLORA_GIB,
                  2 * 2048 * 128256 * 4 / GIB]])


if __name__ == "__main__":
    main()
