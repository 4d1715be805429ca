"""A frozen base quantised by bitsandbytes itself: the oracle for `learning/quant.py`'s accounting.

The profile counts an int8 or nf4 base by formula (`quant.quantised_weight_bytes`, and the weight
it dequantises for each matmul). This module builds the same model the way a QLoRA user does —
transformers' `from_pretrained` with a `BitsAndBytesConfig`, so that bitsandbytes quantises every
linear layer of the blocks and peft then puts its own bitsandbytes LoRA layers on them — and reads
what bitsandbytes really stores: in memory (the packed weights and every tensor of their
quantisation state) and in the checkpoint transformers writes (`save_pretrained`). bitsandbytes
runs on a CPU (its default backend dequantises each weight and calls `linear`, as its CUDA
backend does for more than 256 rows), so the tests need no GPU; they skip where bitsandbytes is
not installed (it is in the `dev` extra).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import tempfile
from pathlib import Path

import torch
from torch import nn

from .errors import LearningError
from .models import DTYPES, ModelSpec, build_model


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def quantisation_config(base_dtype: str, compute_dtype: str):
    """transformers' BitsAndBytesConfig for QLoRA's nf4 (double quantisation, as in the paper) or
    LLM.int8's int8 (outlier threshold 0: every column quantised, which the accounting counts)."""
    from transformers import BitsAndBytesConfig

    if base_dtype == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=DTYPES[compute_dtype])
    if base_dtype == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0)
    raise LearningError("bitsandbytes quantises int8 or nf4 bases", field="model.base_dtype", value=base_dtype)


def build_quantised_model(spec: ModelSpec, folder: Path | None = None) -> tuple[nn.Module, str]:
    """(model, architecture) of `spec` with its frozen base quantised by bitsandbytes on the CPU.

    The model is built with `spec`'s random weights, written to `folder` (a temporary one by
    default) and loaded back through transformers' bitsandbytes integration, which quantises every
    linear layer except the output head, as a QLoRA user's load does."""
    if not bitsandbytes_available():
        raise LearningError("needs the bitsandbytes package (pip install bitsandbytes)", field="model.base_dtype",
                            value=spec.base_dtype)
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    model, arch = build_model(dataclasses.replace(spec, base_dtype="auto"))
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(folder or tmp) / "unquantised"
        model.save_pretrained(where)
        loader = AutoModelForCausalLM if spec.task == "causal_lm" else AutoModelForSequenceClassification
        quantised = loader.from_pretrained(where, quantization_config=quantisation_config(spec.base_dtype, spec.dtype),
                                           device_map="cpu", dtype=DTYPES[spec.dtype])
    return quantised, arch


def _quant_state_tensors(weight: torch.Tensor) -> list[torch.Tensor]:
    """The tensors bitsandbytes keeps beside a quantised weight (absmax, its double quantisation,
    the code tables, the offset; int8's per-row scales)."""
    out = []
    state = getattr(weight, "quant_state", None)
    if state is not None:
        out += [state.absmax, state.code]
        if state.nested:
            out += [state.offset, state.state2.absmax, state.state2.code]
    scb = getattr(weight, "SCB", None)
    if scb is not None:
        out.append(scb)
    return [t for t in out if isinstance(t, torch.Tensor)]


def stored_bytes(module: nn.Module) -> int:
    """Bytes `module` really holds: every parameter's storage (packed, for quantised weights) plus
    every tensor of the quantisation states, each storage counted once."""
    seen, total = set(), 0
    for p in module.parameters():
        for t in [p] + _quant_state_tensors(p):
            key = t.untyped_storage()._cdata
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
    return total


def quantised_linears(model: nn.Module) -> dict[str, nn.Module]:
    """name -> every bitsandbytes-quantised linear layer of `model` (in a peft model: the base layers)."""
    import bitsandbytes as bnb

    return {name: m for name, m in model.named_modules() if isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))}


def checkpoint_tensor_bytes(model: nn.Module, folder: Path) -> dict[str, int]:
    """name -> bytes of every tensor in the safetensors checkpoint transformers writes for `model`."""
    from safetensors import safe_open

    model.save_pretrained(folder)
    out = {}
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                t = f.get_tensor(key)
                out[key] = t.numel() * t.element_size()
    return out
