"""The memory a tier's training step really takes on a CPU, measured by the allocator, not accounted.

`torch.profiler` with `profile_memory=True` records every allocation and free of the CPU allocator
with the allocator's running total (`total_allocated`); the highest total over the step is the
step's measured peak. This is the oracle the profile's per-tier memory figure is checked against
(tests/test_memory.py, benchmarks/bench_memory.py): it is measured by torch's allocator instrumentation, a
different mechanism from the tensor tracking the profile uses (learning/live_memory.py).

A tier's step is what the device holding it does: it holds its parameters, receives the
activations (and side tensors) from upstream, runs forward, receives the gradient of its output (or
computes the loss), runs backward and takes an optimizer step. The step measured is the second, as
every step of a training run but the first: the optimizer's state (AdamW's two moments) is held
throughout. Everything but the parameters and that state is created inside the measured window.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from .lora import LoraSpec, apply_lora
from .models import ModelSpec, build_model
from .profile import synthetic_batch
from .quant import QUANTISED
from .split import split_model, split_step, trainable_parameters

OPTIMIZERS = {"adamw": lambda params: torch.optim.AdamW(params, lr=1e-4),
              "sgd": lambda params: torch.optim.SGD(params, lr=1e-4, momentum=0.9)}


def allocator_peak_bytes(fn) -> int:
    """Highest number of bytes the CPU allocator held while `fn()` ran, above what it held at the start
    (`fn` runs on this thread; allocations of other threads are counted too)."""
    from torch._C._profiler import _EventType

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            events.append(event)
    if not events:
        return 0
    # the running total counts from an earlier origin: the start is the first event's total before it
    first = min(events, key=lambda e: e.start_time_ns).extra_fields
    start = first.total_allocated - first.alloc_size
    return int(max(e.extra_fields.total_allocated for e in events) - start)


def measured_tier_peak_bytes(spec: ModelSpec, lora: LoraSpec, batch_size: int, sequence_length: int | None,
                             cuts: list[int], tier_index: int, optimizer: str = "adamw",
                             checkpointing: bool = False) -> int:
    """Peak bytes of tier `tier_index`'s training step at `cuts` on this CPU, in steady state (the
    second step, the optimizer's state already held): its parameters and that state plus the
    allocator's measured peak over receiving, forward, backward and the optimizer step (with
    per-block gradient checkpointing when `checkpointing`). An int8 or nf4 `spec.base_dtype` is
    quantised by bitsandbytes itself (learning/bnb_reference.py), whose stored bytes are counted."""
    if spec.base_dtype in QUANTISED:
        from .bnb_reference import build_quantised_model

        model, arch = build_quantised_model(spec)
    else:
        model, arch = build_model(spec)
    model = apply_lora(model, arch, lora)
    model.train()
    config = model.get_base_model().config
    tiers = split_model(model, arch, spec.task, cuts)
    batch = synthetic_batch(arch, spec.task, config, batch_size, sequence_length, None, torch.device("cpu"))
    result = split_step(tiers, batch)  # what crosses each cut, and the gradient that comes back
    model.zero_grad(set_to_none=True)
    tier = tiers[tier_index]
    tier.checkpointing = checkpointing
    crossing_in = result.crossings[tier_index - 1] if tier_index > 0 else None
    crossing_out = result.crossings[tier_index] if tier_index < len(tiers) - 1 else None
    activation_in = None if crossing_in is None else crossing_in.activation.detach().clone()
    side_in = None if crossing_in is None else {k: v.clone() for k, v in crossing_in.side.items()}
    gradient_out = None if crossing_out is None else crossing_out.gradient.clone()
    params = trainable_parameters(tier)
    make_optimizer = OPTIMIZERS.get(optimizer)
    optimizer_ = make_optimizer(params) if make_optimizer is not None and params else None
    del result

    def step():
        if tier.first:
            out, _ = tier({k: v.clone() for k, v in batch.items()})
        else:
            received = activation_in.clone().requires_grad_(crossing_in.activation.requires_grad)
            out, _ = tier(received, {k: v.clone() for k, v in side_in.items()})
        if tier.last:
            out.loss.backward()
        else:
            out.hidden.backward(gradient_out.clone())
        if optimizer_ is not None:
            optimizer_.step()
        tier.zero_grad(set_to_none=True)

    step()  # the first step creates the optimizer's state, which every later step holds throughout
    peak = allocator_peak_bytes(step)
    from .bnb_reference import stored_bytes

    state = {t.untyped_storage()._cdata: t.untyped_storage().nbytes()
             for values in (optimizer_.state.values() if optimizer_ is not None else ())
             for t in values.values() if isinstance(t, torch.Tensor)}
    return stored_bytes(tier) + sum(state.values()) + peak
