"""LoRA through peft: by default on every linear layer of the transformer blocks (SplitLLM §IV).

For BERT-base at rank 8 that is q, k, v, attention output, intermediate and output of each of the
12 blocks: 12 x 8 x (4·1536 + 2·3840) = 1,327,104 adapter parameters (DESIGN.md). The task head
(classifier / score), newly initialised, is trained too unless `train_head` is False; everything
else is frozen.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from torch import nn

from .errors import LearningError
from .models import block_prefix

HEAD_MODULES = {"bert": ("classifier",), "vit": ("classifier",), "gpt2": ("score",), "decoder": ("score",)}


@dataclass(frozen=True)
class LoraSpec:
    """rank r, scaling alpha (update = alpha/r · B·A), dropout on the adapter input, target modules."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] | str = "all-linear"  # or names like ("query", "value")
    train_head: bool = True
    dtype: str = "float32"  # the adapters': 'float32' (peft's autocast_adapter_dtype) or 'auto' (the model's)


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"  # GPT-2 uses Conv1D


def block_linear_names(model: nn.Module, arch: str) -> list[str]:
    """Full names of the linear layers inside the transformer blocks, in order."""
    pattern = re.compile("^" + re.escape(block_prefix(arch)).replace(re.escape("{i}"), r"\d+"))
    return [name for name, module in model.named_modules() if pattern.match(name) and _is_linear(module)]


def select_targets(model: nn.Module, arch: str, target_modules: tuple[str, ...] | str) -> list[str]:
    names = block_linear_names(model, arch)
    if target_modules == "all-linear":
        chosen = names
    else:
        wanted = (target_modules,) if isinstance(target_modules, str) else tuple(target_modules)
        chosen = [n for n in names if any(n == w or n.endswith("." + w) for w in wanted)]
    if not chosen:
        available = sorted({n.rsplit(".", 1)[-1] for n in names})
        raise LearningError(f"target modules match no linear layer of the blocks; available: {', '.join(available)}",
                            field="model.lora.target_modules", value=target_modules)
    return chosen


def apply_lora(model: nn.Module, arch: str, spec: LoraSpec) -> nn.Module:
    """Wrap `model` with peft LoRA adapters; return the PeftModel (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    if spec.rank < 1:
        raise LearningError("LoRA rank must be >= 1", field="model.lora.rank", value=spec.rank)
    targets = select_targets(model, arch, spec.target_modules)
    if spec.dtype not in ("float32", "auto"):
        raise LearningError("the adapters' dtype is 'float32' or 'auto' (the model's)", field="model.lora.dtype",
                            value=spec.dtype)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                        fan_in_fan_out=(arch == "gpt2"), bias="none")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        # float32: peft casts bfloat16/float16 adapters up (its default); auto: they keep the model's dtype
        peft_model = get_peft_model(model, config, autocast_adapter_dtype=spec.dtype == "float32")
    if spec.train_head:
        base = peft_model.get_base_model()
        for name in HEAD_MODULES[arch]:
            head = getattr(base, name, None)
            if head is not None:
                for p in head.parameters():
                    p.requires_grad_(True)
    return peft_model


def is_lora_parameter(name: str) -> bool:
    return "lora_" in name
