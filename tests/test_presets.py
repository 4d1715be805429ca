"""Model presets against numbers nobody here wrote: published parameter counts and LoRA's closed form.

Models are built on the meta device (shapes, no storage), so a 70 B model costs no memory.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from splitsim.learning import LoraSpec, apply_lora
from splitsim.learning.models import build_config, ModelSpec, find_block_path
from splitsim.scenarios.presets import PRESETS

# Total parameters as published for each checkpoint (the hub's safetensors metadata, shown on
# each model page as "Model size"; for Llama also Meta's model cards: 1.24 B, 3.21 B, 8.03 B, 70.6 B).
PUBLISHED_PARAMETERS = {
    "llama-3.2-1b": 1_235_814_400,    # meta-llama/Llama-3.2-1B
    "llama-3.2-3b": 3_212_749_824,    # meta-llama/Llama-3.2-3B
    "llama-3.1-8b": 8_030_261_248,    # meta-llama/Llama-3.1-8B
    "llama-3.1-70b": 70_553_706_496,  # meta-llama/Llama-3.1-70B
    "qwen2.5-0.5b": 494_032_768,      # Qwen/Qwen2.5-0.5B ("0.49B")
    "qwen2.5-7b": 7_615_616_512,      # Qwen/Qwen2.5-7B ("7.61B")
    "mistral-7b": 7_248_023_552,      # mistralai/Mistral-7B-v0.3
    "gemma-2-2b": 2_614_341_888,      # google/gemma-2-2b
    "phi-3-mini": 3_821_079_552,      # microsoft/Phi-3-mini-4k-instruct ("3.8B")
}


def meta_model(name: str, task: str = "causal_lm"):
    from splitsim.learning.models import _model_class, architecture_of

    config = build_config(ModelSpec(name, task=task))
    with torch.device("meta"):
        model = _model_class(architecture_of(config), task, config)(config)
    return model, architecture_of(config)


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMETERS))
def test_preset_parameter_counts_equal_the_published_sizes(name):
    model, _ = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS[name]
    assert len(model.get_submodule(find_block_path(model, "decoder"))) == PRESETS[name].blocks


@pytest.mark.parametrize("name,rank,expected", [
    # r·(in + out) summed over q, k, v, o, gate, up, down of every block: the DESIGN.md anchor
    ("llama-3.1-8b", 16, 32 * 16 * ((4096 + 4096) + 2 * (4096 + 1024) + (4096 + 4096) + 2 * (4096 + 14336)
                                    + (14336 + 4096))),
    ("qwen2.5-0.5b", 8, 24 * 8 * ((896 + 896) * 2 + 2 * (896 + 128) + 2 * (896 + 4864) + (4864 + 896))),
])
def test_lora_parameters_equal_the_closed_form_and_peft(name, rank, expected):
    model, arch = meta_model(name)
    lora = apply_lora(model, arch, LoraSpec(rank=rank, train_head=False))
    adapters = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
    closed_form = sum(rank * (m.in_features + m.out_features) for n, m in lora.named_modules()
                      if isinstance(m, nn.Linear) and n.endswith("base_layer"))
    trainable, _ = lora.get_nb_trainable_parameters()  # peft's own count
    assert adapters == closed_form == trainable == expected
    if name == "llama-3.1-8b":
        assert expected == 41_943_040


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.model_type in
                                  ("llama", "qwen2", "qwen3", "mistral", "gemma2", "phi3")])
def test_every_decoder_preset_builds_and_declares_its_blocks(name):
    model, _ = meta_model(name, "classification")
    blocks = model.get_submodule(find_block_path(model, "decoder"))
    assert len(blocks) == PRESETS[name].blocks == model.config.num_hidden_layers
    assert model.config.max_position_embeddings == PRESETS[name].max_positions


def test_the_block_finder_falls_back_to_the_longest_list_of_identical_blocks():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])  # mixed: not blocks
            self.trunk = nn.Module()
            self.trunk.stages = nn.ModuleList([nn.Linear(4, 4) for _ in range(5)])

    assert find_block_path(Odd()) == "trunk.stages"


# ---- weight-free profiles (model.weights: none) ---------------------------------------------------

def _profiles(name: str, batch: int, seq: int | None, rank: int = 2):
    from splitsim.learning import ModelSpec as Spec
    from splitsim.learning import profile_model

    real = profile_model(Spec(name), LoraSpec(rank=rank), batch, seq, use_cache=False, timed=False)
    free = profile_model(Spec(name, weights="none"), LoraSpec(rank=rank), batch, seq, use_cache=False, timed=False)
    return real, free


@pytest.mark.parametrize("name", ["bert-tiny", "vit-tiny", "gpt2-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny",
                                  "mistral-tiny", "gemma2-tiny", "phi3-tiny"])
def test_a_weight_free_profile_has_the_real_steps_bytes_flops_and_parameters(name):
    real, free = _profiles(name, 2, None if name.startswith("vit") else 16)
    assert free.device == "meta (weight-free)" and free.environment["weights"] == "none"
    assert free.boundaries == real.boundaries
    for a, b in zip(free.segments, real.segments):
        assert (a.forward_flops, a.backward_flops) == (b.forward_flops, b.backward_flops)
        assert (a.frozen_params, a.lora_params, a.other_trainable_params, a.param_bytes, a.trainable_bytes) == \
               (b.frozen_params, b.lora_params, b.other_trainable_params, b.param_bytes, b.trainable_bytes)


@pytest.mark.parametrize("name", ["bert-tiny", "vit-tiny", "gpt2-tiny", "llama-tiny", "qwen2-tiny", "qwen3-tiny",
                                  "gemma2-tiny", "mistral-tiny", "phi3-tiny"])
def test_a_weight_free_profile_saves_what_the_real_step_saves(name):
    """Meta-device attention runs the kernel a CPU runs (learning/meta_attention.py). With a sliding
    window (Mistral, Phi-3 at 8 < 16 tokens) the mask a weight-free step builds is not expanded over
    the batch: 1·seq² bytes a block instead of batch·seq², 2.4 % of these toy tiers."""
    real, free = _profiles(name, 2, None if name.startswith("vit") else 16)
    free_saved, real_saved = [s.saved_bytes for s in free.segments], [s.saved_bytes for s in real.segments]
    if name in ("mistral-tiny", "phi3-tiny"):
        assert sum(free_saved) == pytest.approx(sum(real_saved), rel=0.03)
    else:
        assert free_saved == real_saved


@pytest.mark.slow
def test_weight_free_equals_real_on_a_model_over_100m_parameters():
    real, free = _profiles("bert-base", 2, 64, rank=8)
    assert sum(s.frozen_params + s.lora_params + s.other_trainable_params for s in real.segments) > 100e6
    assert free.boundaries == real.boundaries
    assert [(s.forward_flops, s.backward_flops, s.param_bytes, s.saved_bytes) for s in free.segments] == \
           [(s.forward_flops, s.backward_flops, s.param_bytes, s.saved_bytes) for s in real.segments]


# ---- memory levers ------------------------------------------------------------------------------

def test_nf4_storage_is_the_qlora_papers_4_127_bits_per_weight():
    from splitsim.learning.quant import NF4_CONSTANT_BYTES, quantised_weight_bytes

    numel = 4096 * 14336  # one Llama-3.1-8B MLP projection
    # per weight, less the tensor's code tables and offset (1,092 bytes: 2e-5 bits a weight here)
    bits = 8 * (quantised_weight_bytes(numel, 4096, "nf4") - NF4_CONSTANT_BYTES) / numel
    assert bits == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), rel=1e-9)
    assert round(bits, 3) == 4.127  # Dettmers et al. 2023, §3 (double quantisation)
    assert quantised_weight_bytes(numel, 4096, "int8") == numel + 4 * 4096  # LLM.int8: int8 + fp32 row scales


def test_quantising_the_base_changes_only_the_frozen_linear_bytes():
    from splitsim.learning import ModelSpec as Spec
    from splitsim.learning import profile_model

    def profile(base):
        return profile_model(Spec("llama-tiny", task="causal_lm", weights="none", dtype="bfloat16", base_dtype=base),
                             LoraSpec(rank=2), 1, 16, use_cache=False, timed=False)

    bf16, nf4 = profile("auto"), profile("nf4")
    model, arch = meta_model("llama-tiny")
    blocks = model.get_submodule(find_block_path(model, "decoder"))
    linear = [m for m in blocks.modules() if isinstance(m, nn.Linear)]
    from splitsim.learning.quant import quantised_weight_bytes

    saved = sum(2 * m.weight.numel() - quantised_weight_bytes(m.weight.numel(), m.out_features, "nf4") for m in linear)
    assert bf16.whole().param_bytes - nf4.whole().param_bytes == saved
    assert nf4.boundaries == bf16.boundaries
    assert [(s.forward_flops, s.backward_flops, s.trainable_bytes) for s in nf4.segments] == \
           [(s.forward_flops, s.backward_flops, s.trainable_bytes) for s in bf16.segments]
    assert nf4.segments[0].param_bytes == bf16.segments[0].param_bytes  # embeddings stay in bf16


# ---- FLOPs against published counts ---------------------------------------------------------------

# DeiT (Touvron et al., ICML 2021, Table 1): forward "FLOPs" of the ViT architectures at 224 px with
# 1,000 classes, counted as multiply-adds (fvcore's convention), to one decimal: 1.3 G, 4.6 G and 17.6 G.
DEIT_PUBLISHED_GMAC = {"deit-tiny": (192, 3, 1.3), "deit-small": (384, 6, 4.6), "deit-base": (768, 12, 17.6)}


@pytest.mark.parametrize("name", list(DEIT_PUBLISHED_GMAC))
def test_vit_forward_flops_equal_deits_published_counts(name, tmp_path):
    """The profile's forward FLOPs (2 per multiply-add) of DeiT-Ti/S/B, less the LoRA adapters'
    closed form 2·tokens·r·(in + out), halved, round to the published multiply-add counts."""
    from transformers import ViTConfig

    from splitsim.learning import profile_model

    hidden, heads, published = DEIT_PUBLISHED_GMAC[name]
    ViTConfig(hidden_size=hidden, num_attention_heads=heads, intermediate_size=4 * hidden, num_hidden_layers=12,
              image_size=224, patch_size=16, num_labels=1000).save_pretrained(tmp_path)
    rank, batch = 1, 1
    profile = profile_model(ModelSpec(str(tmp_path), num_labels=1000, weights="none"),
                            LoraSpec(rank=rank, target_modules=("q_proj",)), batch, None, use_cache=False, timed=False)
    tokens = batch * ((224 // 16) ** 2 + 1)
    lora = 2 * tokens * rank * (hidden + hidden) * 12
    gmac = (profile.whole().forward_flops - lora) / 2 / 1e9
    assert round(gmac, 1) == published, gmac


# ---- the whole (FL) tier counts a tied embedding once ----------------------------------------------

def _peft_counts(name: str, rank: int) -> tuple[int, int]:
    """(trainable, all) parameters of the LoRA model by peft's own count (each tensor once)."""
    model, arch = meta_model(name)
    trainable, total = apply_lora(model, arch, LoraSpec(rank=rank)).get_nb_trainable_parameters()
    return trainable, total


def _whole_tier_counts(name: str, rank: int):
    from splitsim.learning import ModelSpec as Spec
    from splitsim.learning import profile_model

    profile = profile_model(Spec(name, task="causal_lm", weights="none"), LoraSpec(rank=rank), 1, 16,
                            use_cache=False, timed=False)
    whole = profile.whole()
    return profile, whole, (whole.lora_params + whole.other_trainable_params,
                            whole.frozen_params + whole.lora_params + whole.other_trainable_params)


@pytest.mark.parametrize("name", ["gemma2-tiny", "qwen2-tiny", "llama-tiny", "gpt2-tiny"])
def test_the_whole_model_tier_counts_each_parameter_once_as_peft_does(name):
    """GPT-2 and the tiny Gemma-2 / Qwen2 tie the head to the embeddings; each tier of a split holds
    its own copy, the unsplit model (FL's tier) one."""
    profile, whole, counts = _whole_tier_counts(name, 2)
    assert counts == _peft_counts(name, 2)
    tied = profile.tied_frozen_params + profile.tied_trainable_params
    split = profile.tiers([2])
    assert sum(t.frozen_params + t.lora_params + t.other_trainable_params for t in split) == counts[1] + tied


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama-3.2-1b", "llama-3.2-3b", "qwen2.5-0.5b", "gemma-2-2b", "llama-3.1-8b"])
def test_the_whole_tier_of_a_published_model_has_its_published_size(name):
    """The profile's own figure (not a count of the model's deduplicated parameters) against the
    checkpoint's published size: 12-28 % too many before tied embeddings were counted once."""
    profile, whole, (trainable, total) = _whole_tier_counts(name, 16)
    assert total - trainable == PUBLISHED_PARAMETERS[name]
    assert (trainable, total) == _peft_counts(name, 16)
    assert (profile.tied_frozen_params > 0) == PRESETS[name].fields.get("tie_word_embeddings", True)
