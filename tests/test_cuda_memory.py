"""What a CUDA step holds beyond the profile's tensors (learning/cuda_memory.py), against oracles
nobody here wrote: peft's own `prepare_model_for_kbit_training` on models bitsandbytes quantised,
measured by the CPU allocator; and the measured maximum context lengths Unsloth publishes for
Llama-3.1-8B QLoRA (learning/published_gpu_memory.py)."""

from __future__ import annotations

import warnings

import pytest

from splitsim.learning import LoraSpec, ModelSpec
from splitsim.learning.bnb_reference import bitsandbytes_available
from splitsim.learning.cuda_memory import (GIB, Recipe, kbit_activation_bytes, kbit_upcast_bytes, max_sequence_length,
                                  unquantised_16bit_params)
from splitsim.scenarios.devices import ALLOCATOR_SLACK_FRACTION, CUDA_CONTEXT_BYTES, DEVICES

needs_bnb = pytest.mark.skipif(not bitsandbytes_available(), reason="bitsandbytes is not installed (dev extra)")

VOCAB, HIDDEN = 1000, 512


def _spec(**overrides) -> ModelSpec:
    fields = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN,
              "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64, **overrides}
    return ModelSpec("llama-tiny", task="causal_lm", dtype="bfloat16", base_dtype="nf4",
                     overrides=tuple(fields.items()))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's and bitsandbytes' notes on casting and checkpointing
        yield


def _kbit_prepare(monkeypatch) -> None:
    """From now on, the quantised models of learning/bnb_reference.py go through peft's preparation."""
    import splitsim.learning.bnb_reference as reference

    build = reference.build_quantised_model

    def prepared(spec, folder=None):
        from peft import prepare_model_for_kbit_training

        model, arch = build(spec, folder)
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False), arch

    monkeypatch.setattr(reference, "build_quantised_model", prepared)


@needs_bnb
def test_peft_upcasts_exactly_the_parameters_counted_as_unquantised():
    """peft's function, run on a model bitsandbytes quantised, adds 2 bytes for each parameter the
    count keeps in 16 bits: the embeddings, the head and the norms."""
    from peft import prepare_model_for_kbit_training

    from splitsim.learning.bnb_reference import build_quantised_model, stored_bytes

    spec = _spec()
    model, _ = build_quantised_model(spec)
    before = stored_bytes(model)
    prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    assert stored_bytes(model) - before == kbit_upcast_bytes(unquantised_16bit_params(spec))


@needs_bnb
@pytest.mark.parametrize("sequence_length", [64, 128])
def test_kbit_preparation_adds_to_a_checkpointed_step_what_the_formula_says(monkeypatch, sequence_length):
    """The server tier (3 blocks and the head) of a checkpointed QLoRA step, measured by the CPU
    allocator with and without peft's preparation: the difference is the upcast head and norms plus
    the float32 residual stream and logits, within 5 %."""
    from splitsim.learning.measured_memory import measured_tier_peak_bytes

    spec, lora, batch = _spec(), LoraSpec(rank=4, train_head=False), 2
    plain = measured_tier_peak_bytes(spec, lora, batch, sequence_length, [1], 1, checkpointing=True)
    _kbit_prepare(monkeypatch)
    prepared = measured_tier_peak_bytes(spec, lora, batch, sequence_length, [1], 1, checkpointing=True)
    head_and_norms = VOCAB * HIDDEN + HIDDEN * (2 * 3 + 1)
    expected = kbit_upcast_bytes(head_and_norms) + kbit_activation_bytes(batch * sequence_length, HIDDEN, 3, VOCAB)
    assert prepared - plain == pytest.approx(expected, rel=0.05)


def test_a_gpu_leaves_its_tensors_the_card_less_context_and_allocator_slack():
    a100 = DEVICES["a100"]
    assert a100.usable_memory_bytes == int((80 * GIB - CUDA_CONTEXT_BYTES) / (1 + ALLOCATOR_SLACK_FRACTION))
    assert DEVICES["phone-8gb"].allocator_slack_fraction == 0  # no CUDA allocator on a phone


@pytest.mark.slow
def test_longest_sequences_match_unsloths_measured_ones():
    """Llama-3.1-8B QLoRA (r = 32 on every linear layer, batch 1, checkpointing), weight-free: the
    longest sequence each card fits is within 10 % of what Unsloth measured with transformers + peft
    ('Hugging Face + FA2'), and an 8 GB card fits none, as measured. Without the CUDA and recipe
    terms the same estimate is 34-92 % too long (benchmarks/bench_cuda_memory.py)."""
    from splitsim.learning.published_gpu_memory import UNSLOTH_LLAMA31_8B_HF_FA2, UNSLOTH_RECIPE

    r = UNSLOTH_RECIPE
    spec = ModelSpec("llama-3.1-8b", task="causal_lm", weights="none", dtype=r["dtype"], base_dtype=r["base_dtype"])
    lora = LoraSpec(rank=r["rank"], alpha=r["alpha"], target_modules=r["targets"], train_head=False)
    for row in UNSLOTH_LLAMA31_8B_HF_FA2:
        fits = max_sequence_length(spec, lora, r["batch_size"], row.card_gib * GIB, Recipe(kbit_upcast=True))
        if row.max_tokens is None:
            assert fits is None, f"{row.card_gib} GiB: measured OOM, estimated {fits} tokens"
        else:
            assert fits == pytest.approx(row.max_tokens, rel=0.10), f"{row.card_gib} GiB"
