"""Measure a `WorkloadProfile` with real split steps, cut at every block boundary.

One step with `torch.utils.flop_counter.FlopCounterMode` around each segment's forward and backward
counts FLOPs; saved-tensor hooks record the activations each segment keeps for its backward pass
(parameters excluded, shared storage counted once); on CUDA the caching allocator's peaks give the
transient memory. Further steps, synchronised, time each segment. The tensors crossing each
boundary are the real ones of the step. Profiles are cached by model config, batch shape, LoRA,
dtype, optimizer and device.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from splitsim.scenarios.workload import BoundaryProfile, SegmentProfile, WorkloadProfile

from .errors import LearningError
from .flops import flop_counter
from .meta_attention import as_on_cpu
from .quant import dequantised_bytes, quantised_weight_bytes
from .live_memory import LiveBytes
from .lora import LoraSpec, apply_lora, is_lora_parameter
from .models import DTYPES, ModelSpec, block_list, build_config, build_model
from .split import Tier, split_model, split_step

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LearningError("CUDA is not available on this machine", field="model.device", value=device)
    return torch.device(device)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def check_shapes(arch: str, config, sequence_length: int | None, image_size: int | None) -> None:
    """Sequence length within the position embeddings; image side a multiple of the patch size."""
    if arch == "vit":
        size = image_size or config.image_size
        if size % config.patch_size:
            raise LearningError(f"image size must be a multiple of the patch size {config.patch_size}",
                                field="model.image_size", value=image_size)
        return
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if sequence_length is None or sequence_length < 1 or (limit and sequence_length > limit):
        raise LearningError(f"sequence length must be in [1, {limit}] for this model", field="model.sequence_length",
                            value=sequence_length)


def synthetic_batch(arch: str, task: str, config, batch_size: int, sequence_length: int | None,
                    image_size: int | None, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of the right shapes: random token ids (never the pad id) or random images, and labels."""
    check_shapes(arch, config, sequence_length, image_size)
    g = torch.Generator().manual_seed(seed)
    if arch == "vit":
        size = image_size or config.image_size
        batch = {"pixel_values": torch.randn(batch_size, config.num_channels, size, size, generator=g),
                 "labels": torch.randint(0, config.num_labels, (batch_size,), generator=g)}
    else:
        pad = getattr(config, "pad_token_id", None)
        ids = torch.randint(1, config.vocab_size, (batch_size, sequence_length), generator=g)
        if pad is not None:
            ids[ids == pad] = (pad + 1) % config.vocab_size
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        batch["labels"] = ids.clone() if task == "causal_lm" else torch.randint(0, config.num_labels, (batch_size,),
                                                                                 generator=g)
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def storage_key(tensor: torch.Tensor) -> int:
    """Identifies a tensor's storage by the storage object itself (its StorageImpl), not by its data
    pointer, which every meta tensor shares (0) in a weight-free profile."""
    return tensor.untyped_storage()._cdata


class StepProbe:
    """Phases of a split step that count FLOPs, saved activations and transient memory per tier.

    Transient memory: on CUDA from the caching allocator's peaks; elsewhere (CPU, the meta device of
    a weight-free profile) from `LiveBytes`, which follows every storage the step creates. A
    segment's `transient` is the most it holds beyond its saved tensors at any moment of its
    forward or its backward: `max(F - S, O + G + B)` with F the forward's peak of new bytes, S the
    new bytes it saves, O what else its forward leaves alive (its output), G the gradient of its
    output that arrives from downstream and B the backward's peak of new bytes.
    """

    def __init__(self, n: int, param_ptrs: set[int], device: torch.device, scratch: dict[int, int] | None = None):
        self.fwd_flops, self.bwd_flops = [0.0] * n, [0.0] * n
        self.saved: list[dict[int, int]] = [{} for _ in range(n)]
        self.transient = [0] * n
        self._fwd = [(0, 0, 0)] * n  # (forward peak of new bytes, new bytes saved, other new bytes left alive)
        self.param_ptrs, self.device = param_ptrs, device
        self._bwd_peak = [0] * n
        self.live = None if device.type == "cuda" else LiveBytes(scratch)

    def _memory_window(self):
        """(context to run the phase in, reader of (peak, end) new bytes since the phase began): the
        CUDA allocator's statistics, or LiveBytes entered as a dispatch mode."""
        if self.live is None:
            _sync(self.device)
            start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

            def read():
                _sync(self.device)
                return (torch.cuda.max_memory_allocated(self.device) - start,
                        torch.cuda.memory_allocated(self.device) - start)
            return contextlib.nullcontext(), read
        live, start = self.live, self.live.live
        live.reset_peak()
        return live, lambda: (live.peak - start, live.live - start)

    @contextlib.contextmanager
    def forward(self, t: int):
        saved = self.saved[t]
        new_saved: dict[int, int] = {}
        mark = None if self.live is None else self.live.created

        def pack(tensor):
            key = storage_key(tensor)
            if key not in self.param_ptrs:
                nbytes = tensor.untyped_storage().nbytes()
                saved[key] = max(saved.get(key, 0), nbytes)
                if mark is not None and self.live.is_newer(key, mark):
                    new_saved[key] = nbytes
            return tensor

        mode, read = self._memory_window()
        with mode, flop_counter() as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            yield
        self.fwd_flops[t] += counter.get_total_flops()
        peak, kept = read()
        # on CUDA the allocator cannot tell which new bytes are saved: all that are kept count
        new_saved_bytes = kept if self.live is None else sum(new_saved.values())
        self._fwd[t] = (peak, new_saved_bytes, max(0, kept - new_saved_bytes))

    @contextlib.contextmanager
    def backward(self, t: int):
        mode, read = self._memory_window()
        with mode, flop_counter() as counter:
            yield
        self.bwd_flops[t] += counter.get_total_flops()
        self._bwd_peak[t] = read()[0]

    def finish(self, crossings) -> None:
        """Transients once the gradients crossing each cut are known (`crossings[t]` follows tier t)."""
        for t, (peak_f, saved_new, other) in enumerate(self._fwd):
            incoming = crossings[t].backward_bytes if t < len(crossings) else 0
            self.transient[t] = max(0, peak_f - saved_new, other + incoming + self._bwd_peak[t])
        if self.live is not None and self.live.uncounted:
            log.warning("transient memory leaves out the non-strided outputs of %s", ", ".join(sorted(self.live.uncounted)))


class _Timing:
    """Phases that time each tier's forward and backward (synchronised on CUDA)."""

    def __init__(self, n: int, device: torch.device):
        self.fwd_s, self.bwd_s = [0.0] * n, [0.0] * n
        self.device = device

    @contextlib.contextmanager
    def forward(self, t: int):
        _sync(self.device)
        start = time.perf_counter()
        yield
        _sync(self.device)
        self.fwd_s[t] += time.perf_counter() - start

    @contextlib.contextmanager
    def backward(self, t: int):
        _sync(self.device)
        start = time.perf_counter()
        yield
        _sync(self.device)
        self.bwd_s[t] += time.perf_counter() - start


def _segment_name(tier: Tier, num_blocks: int) -> str:
    if tier.first and tier.stop == 0:
        return "embeddings"
    if tier.last and tier.start == num_blocks:
        return "head"
    return f"block{tier.start}"


def _frozen_linears(tier: Tier, base_dtype: str) -> list[nn.Linear]:
    """The frozen linear layers inside the tier's blocks, which a `base_dtype` base stores in that
    dtype; none when the base keeps the compute dtype."""
    if base_dtype in ("auto", "") or tier.blocks is None:
        return []
    return [m for m in tier.blocks.modules()
            if isinstance(m, nn.Linear) and m.weight is not None and not m.weight.requires_grad]


def _frozen_linear_bytes(tier: Tier, base_dtype: str) -> dict[int, int]:
    """Storage of each frozen linear weight inside the tier's blocks when the base is `base_dtype`
    (id(parameter) -> bytes); empty when the base keeps the compute dtype."""
    return {id(m.weight): quantised_weight_bytes(m.weight.numel(), m.out_features, base_dtype)
            for m in _frozen_linears(tier, base_dtype)}


def _dequant_scratch(tiers: list[Tier], spec: ModelSpec) -> dict[int, int]:
    """storage -> bytes of its dequantised copy, for every frozen linear weight of a base stored
    quantised (or below the compute precision): what each matmul on it holds while it runs
    (learning/quant.py), for `LiveBytes` to add at that operator."""
    return {storage_key(m.weight): dequantised_bytes(m.weight.numel(), spec.base_dtype, spec.dtype)
            for tier in tiers for m in _frozen_linears(tier, spec.base_dtype)}


def _dequantised_transient(tier: Tier, base_dtype: str, dtype: str) -> int:
    """The largest weight of the tier's quantised base dequantised for a matmul (learning/quant.py):
    added to the transient where the step's memory is read from the CUDA allocator, which sees only
    the unquantised step's; LiveBytes adds it at each operator instead."""
    return max((dequantised_bytes(m.weight.numel(), base_dtype, dtype) for m in _frozen_linears(tier, base_dtype)),
               default=0)


def _param_counts(tier: Tier, base_dtype: str = "auto") -> dict:
    frozen = lora = other = pbytes = tbytes = 0
    stored = _frozen_linear_bytes(tier, base_dtype)
    for name, p in tier.named_parameters():
        pbytes += stored.get(id(p), p.nbytes)
        if not p.requires_grad:
            frozen += p.numel()
        else:
            tbytes += p.nbytes
            if is_lora_parameter(name):
                lora += p.numel()
            else:
                other += p.numel()
    return {"frozen_params": frozen, "lora_params": lora, "other_trainable_params": other, "param_bytes": pbytes,
            "trainable_bytes": tbytes}


def _tied_counts(first: Tier, last: Tier, base_dtype: str) -> dict:
    """Parameters the first segment (embeddings) shares with the last (the head) — tied input and
    output embeddings (Llama-3.2-1B/3B, Qwen2.5-0.5B, Gemma-2): each tier of a split holds its own copy,
    the unsplit model one (WorkloadProfile.tier subtracts these from the whole model)."""
    mine = {id(p) for p in first.parameters()}
    stored = _frozen_linear_bytes(last, base_dtype)
    shared = [p for p in last.parameters() if id(p) in mine]
    return {"tied_frozen_params": sum(p.numel() for p in shared if not p.requires_grad),
            "tied_trainable_params": sum(p.numel() for p in shared if p.requires_grad),
            "tied_param_bytes": sum(stored.get(id(p), p.nbytes) for p in shared),
            "tied_trainable_bytes": sum(p.nbytes for p in shared if p.requires_grad)}


PROFILE_FORMAT = 6
"""Bump whenever what a profile measures changes, so that cached profiles are measured again
(2: attention FLOPs counted the same on every kernel, learning/flops.py; 3: decoder family;
4: transient memory measured on CPU and meta too, learning/live_memory.py; 6: tied embeddings counted once
in the unsplit model; 5: a quantised base's
code tables and dequantised weight, learning/quant.py)."""


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def profile_key(spec: ModelSpec, lora: LoraSpec, batch_size: int, sequence_length: int | None,
                image_size: int | None, optimizer: str, device: torch.device) -> str:
    """Cache key: the model config (not the weights), shapes, LoRA, dtype, optimizer, device, the
    profile format and the torch / transformers versions that measure it."""
    config = build_config(spec).to_dict()
    for volatile in ("transformers_version", "_name_or_path"):
        config.pop(volatile, None)
    payload = {"config": config, "task": spec.task, "dtype": spec.dtype, "attn": spec.attn_implementation,
               "batch": batch_size, "seq": sequence_length, "image": image_size, "lora": asdict(lora),
               "optimizer": optimizer, "device": device_label(device), "format": PROFILE_FORMAT,
               "weight_free": spec.weights == "none", "base_dtype": spec.base_dtype,
               "torch": torch.__version__, "transformers": _transformers_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_dir() -> Path:
    return Path(os.environ.get("SPLITSIM_CACHE_DIR", Path.home() / ".cache" / "splitsim")) / "profiles"


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory where the step will run: CUDA's free memory, or Linux's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_step_bytes(config, arch: str, batch_size: int, sequence_length: int | None, image_size: int | None,
                        dtype_bytes: int, param_bytes: int) -> int:
    """A conservative estimate of one training step's memory: parameters plus activations.

    Activations per block and sample follow Korthikanti et al. (2022), s·h·(34 + 5·a·s/h) bytes at
    2 bytes per element, scaled to the dtype and by the MLP width; twice that as a margin.
    """
    if arch == "vit":
        size = image_size or config.image_size
        seq = (size // config.patch_size) ** 2 + 1
    else:
        seq = sequence_length or 1
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd")
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head")
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer")
    mlp = (getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden) / (4 * hidden)
    per_block = seq * hidden * (10 + 24 * mlp) + 5 * heads * seq * seq
    return int(param_bytes + 2 * batch_size * layers * per_block * dtype_bytes / 2)


def profile_model(spec: ModelSpec, lora: LoraSpec, batch_size: int, sequence_length: int | None = None,
                  image_size: int | None = None, optimizer: str = "adamw", device: str = "auto", repeats: int = 1,
                  use_cache: bool = True, timed: bool = True, remeasure: bool | str = False) -> WorkloadProfile:
    """Measure (or read from the cache) the profile of one split training step.

    `timed=False` skips the timed steps (times are then 0); such profiles are not cached.
    `remeasure` True measures again and replaces the cached profile; "if_loaded" does so when the
    cached profile's step times were measured under load (each profile records the host's load while
    it was measured, `environment.load_per_cpu`) and the host is quiet now — what a caller whose
    result holds the host's step times asks (the `profile` command, the testbed)."""
    if batch_size < 1:
        raise LearningError("batch size must be >= 1", field="model.batch_size", value=batch_size)
    dev = resolve_device(device)
    key = profile_key(spec, lora, batch_size, sequence_length, image_size, optimizer, dev)
    cached = cache_dir() / f"{key}.json"
    if use_cache and timed and remeasure is not True and cached.is_file():
        profile = WorkloadProfile.load(cached)
        load = profile.environment.get("load_per_cpu")
        loaded = load is not None and load > LOADED_PER_CPU and spec.weights != "none"
        now = host_load_per_cpu() if loaded and remeasure == "if_loaded" else None
        if now is not None and now <= LOADED_PER_CPU:
            log.info("the cached profile of %s was measured under load (%.2f runnable processes per core); the host "
                     "is quiet now (%.2f): measuring it again", spec.source, load, now)
        else:
            log.info("profile of %s read from the cache %s (measured on %s, %s)", spec.source, cached, profile.device,
                     profile.environment.get("measured_utc", "date unknown"))
            if loaded:
                log.info("note: its step times were measured with %.2f runnable processes per core (other work was "
                         "running)%s; `splitsim profile FILE --out DIR --remeasure` measures them again", load,
                         f", and the host is busy now ({now:.2f})" if now is not None else "")
            return profile
    where = "the meta device (weight-free)" if spec.weights == "none" else device_label(dev)
    log.info("profiling %s: building the model and running one split step cut at every block on %s ...",
             spec.source, where)
    start = time.perf_counter()
    load_before = host_load_per_cpu()
    profile = _measure(spec, lora, batch_size, sequence_length, image_size, optimizer, dev, repeats if timed else 0)
    loads = [x for x in (load_before, host_load_per_cpu()) if x is not None]
    profile.environment["load_per_cpu"] = max(loads) if loads else None
    steps = 0 if spec.weights == "none" or not timed else repeats
    log.info("profiled %s in %.1f s (%d blocks, %d timed step%s)", spec.source, time.perf_counter() - start,
             profile.num_blocks, steps, "" if steps == 1 else "s")
    if not timed:
        return profile
    if use_cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        profile.save(cached)
    return profile


LOADED_PER_CPU = 0.5
"""Above this many runnable processes per core (1-minute load average) besides the profiler's own, a
cached profile's step times are flagged as measured under load."""


def host_load_per_cpu() -> float | None:
    """The 1-minute load average per core (Unix), or None where the OS does not report it."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def weight_bytes(spec: ModelSpec) -> int:
    """Bytes of the model's parameters in `spec.dtype`, counted on the meta device (no storage)."""
    from .models import _model_class, architecture_of

    config = build_config(spec)
    cls = _model_class(architecture_of(config), spec.task, config)
    with torch.device("meta"):
        model = cls(config)
    return sum(p.numel() for p in model.parameters()) * (torch.finfo(DTYPES[spec.dtype]).bits // 8)


def real_step_memory_error(spec: ModelSpec, batch_size: int, sequence_length: int | None, image_size: int | None,
                           dev: torch.device) -> LearningError | None:
    """What refuses a real-step profile before any weight is built (the model counted on the meta
    device): its weights beyond this machine's free memory (they are built in host memory first), or
    one step's estimate (estimate_step_bytes) beyond the device's. None: it may fit."""
    from .models import architecture_of

    weights, host = weight_bytes(spec), available_memory_bytes(torch.device("cpu"))
    if host is not None and weights > host:
        return LearningError(f"a real-step profile builds the weights, {weights / 2**30:.1f} GiB in {spec.dtype}, more "
                             f"than the {host / 2**30:.1f} GiB free on this machine; profile it weight-free "
                             "(model.weights: none)", field="model.weights", value=spec.weights)
    config = build_config(spec)
    need = estimate_step_bytes(config, architecture_of(config), batch_size, sequence_length, image_size,
                               torch.finfo(DTYPES[spec.dtype]).bits // 8, weights)
    free = available_memory_bytes(dev)
    if free is not None and need > free:
        return LearningError(f"a batch of {batch_size} needs about {need / 2**30:.1f} GiB, more than the "
                             f"{free / 2**30:.1f} GiB free on {device_label(dev)}; a smaller batch, or profile it "
                             "weight-free (model.weights: none)", field="model.batch_size", value=batch_size)
    return None


def profile_memory_error(cfg) -> LearningError | None:
    """real_step_memory_error of a scenario's `model` section when its profile would be measured
    with real weights (not read from model.profile_path, not weight-free, not in the cache)."""
    if cfg.profile_path or cfg.weights == "none":
        return None
    spec, lora = specs_from_config(cfg)
    dev = resolve_device(cfg.device)
    key = profile_key(spec, lora, cfg.batch_size, cfg.sequence_length, cfg.image_size, cfg.optimizer, dev)
    if (cache_dir() / f"{key}.json").is_file():
        return None
    return real_step_memory_error(spec, cfg.batch_size, cfg.sequence_length, cfg.image_size, dev)


def profile_at_hand(cfg) -> bool:
    """Whether a scenario's `model` section's profile costs nothing to get: read from
    model.profile_path, or measured before and in the cache."""
    if cfg.profile_path:
        return Path(os.path.expanduser(cfg.profile_path)).is_file()
    spec, lora = specs_from_config(cfg)
    key = profile_key(spec, lora, cfg.batch_size, cfg.sequence_length, cfg.image_size, cfg.optimizer,
                      resolve_device(cfg.device))
    return (cache_dir() / f"{key}.json").is_file()


def _measure(spec: ModelSpec, lora: LoraSpec, batch_size: int, sequence_length: int | None, image_size: int | None,
             optimizer: str, dev: torch.device, repeats: int) -> WorkloadProfile:
    if spec.weights == "none":
        return _measure_weight_free(spec, lora, batch_size, sequence_length, image_size, optimizer)
    error = real_step_memory_error(spec, batch_size, sequence_length, image_size, dev)
    if error is not None:
        raise error
    model, arch = build_model(spec)
    model = apply_lora(model, arch, lora)
    config = model.get_base_model().config
    check_shapes(arch, config, sequence_length, image_size)
    try:
        model.to(dev)
    except torch.OutOfMemoryError:
        raise LearningError(f"the model does not fit on {device_label(dev)}", field="model.device",
                            value=str(dev)) from None
    model.train()
    n = len(block_list(model, arch))
    tiers = split_model(model, arch, spec.task, list(range(0, n + 1)))  # a tier per segment
    batch = synthetic_batch(arch, spec.task, config, batch_size, sequence_length, image_size, dev)
    counting = StepProbe(len(tiers), {storage_key(p) for p in model.parameters()}, dev, _dequant_scratch(tiers, spec))
    try:
        result = split_step(tiers, batch, counting)
        counting.finish(result.crossings)
        model.zero_grad(set_to_none=True)
        timing = _Timing(len(tiers), dev)
        for _ in range(repeats):
            split_step(tiers, batch, timing)
            model.zero_grad(set_to_none=True)
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower() \
                or "can't allocate memory" in str(err).lower():
            raise LearningError(f"a batch of {batch_size} does not fit in memory on {device_label(dev)}",
                                field="model.batch_size", value=batch_size) from None
        raise
    return _assemble(spec, lora, arch, config, n, tiers, result, counting, timing, repeats, batch_size,
                     sequence_length, image_size, optimizer, device_label(dev))


def _measure_weight_free(spec: ModelSpec, lora: LoraSpec, batch_size: int, sequence_length: int | None,
                         image_size: int | None, optimizer: str) -> WorkloadProfile:
    """The same split step on the meta device: every tensor has its shape and dtype, none has
    storage. The bytes at every cut and the FLOPs of every tier are those of a real step (tested),
    and so are the parameter, gradient, optimizer and saved-activation bytes; nothing is timed."""
    meta = torch.device("meta")
    with meta:
        model, arch = build_model(spec)
    model = apply_lora(model, arch, lora)
    config = model.get_base_model().config
    check_shapes(arch, config, sequence_length, image_size)
    model.train()
    n = len(block_list(model, arch))
    tiers = split_model(model, arch, spec.task, list(range(0, n + 1)))
    cpu_batch = synthetic_batch(arch, spec.task, config, batch_size, sequence_length, image_size, torch.device("cpu"))
    batch = {k: v.to(meta) for k, v in cpu_batch.items()}
    counting = StepProbe(len(tiers), {storage_key(p) for p in model.parameters()}, meta, _dequant_scratch(tiers, spec))
    with as_on_cpu():  # the attention kernel a real (CPU) step runs, so that the saved bytes match
        result = split_step(tiers, batch, counting)
    counting.finish(result.crossings)
    return _assemble(spec, lora, arch, config, n, tiers, result, counting, _Timing(len(tiers), meta), 0, batch_size,
                     sequence_length, image_size, optimizer, "meta (weight-free)")


def _assemble(spec, lora, arch, config, n, tiers, result, counting, timing, repeats, batch_size, sequence_length,
              image_size, optimizer, device: str) -> WorkloadProfile:
    """A WorkloadProfile from one probed split step (and its timed repeats); `n` blocks."""
    reps = max(1, repeats)  # repeats = 0: not timed, the times stay 0
    segments = [SegmentProfile(name=_segment_name(tier, n), **_param_counts(tier, spec.base_dtype),
                               forward_flops=float(counting.fwd_flops[t]), backward_flops=float(counting.bwd_flops[t]),
                               forward_s=timing.fwd_s[t] / reps, backward_s=timing.bwd_s[t] / reps,
                               saved_bytes=int(sum(counting.saved[t].values())),
                               transient_bytes=int(counting.transient[t]) + (
                                   _dequantised_transient(tier, spec.base_dtype, spec.dtype)
                                   if counting.live is None else 0))
                for t, tier in enumerate(tiers)]
    tied = _tied_counts(tiers[0], tiers[-1], spec.base_dtype)
    boundaries = [BoundaryProfile(cut=c.cut, shape=list(c.activation.shape), dtype=str(c.activation.dtype).split(".")[-1],
                                  forward_bytes=c.forward_bytes, side_bytes=c.side_bytes,
                                  backward_bytes=c.backward_bytes) for c in result.crossings]
    import transformers

    targets = lora.target_modules if isinstance(lora.target_modules, str) else ",".join(lora.target_modules)
    return WorkloadProfile(
        model=spec.source, architecture=arch, task=spec.task, dtype=spec.dtype, batch_size=batch_size,
        sequence_length=None if arch == "vit" else sequence_length,
        image_size=(image_size or config.image_size) if arch == "vit" else None, num_labels=spec.num_labels,
        lora_rank=lora.rank, lora_alpha=lora.alpha, lora_targets=targets, optimizer=optimizer, num_blocks=n,
        device=device, segments=segments, boundaries=boundaries, **tied,
        environment={"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version(), "host": platform.node(), "timed_steps": repeats,
                     "measured_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "dtype_bytes": torch.finfo(DTYPES[spec.dtype]).bits // 8,
                     "weights": "none" if spec.weights == "none" else "real",
                     "base_dtype": spec.dtype if spec.base_dtype == "auto" else spec.base_dtype},
    )


def specs_from_config(cfg) -> tuple[ModelSpec, LoraSpec]:
    """ModelSpec and LoraSpec of a scenario's `model` section (scenarios.ModelConfig)."""
    targets = cfg.lora.target_modules if isinstance(cfg.lora.target_modules, str) else tuple(cfg.lora.target_modules)
    spec = ModelSpec(source=cfg.source, task=cfg.task, num_labels=cfg.num_labels, weights=cfg.weights,
                     dtype=cfg.dtype, seed=cfg.seed, base_dtype=cfg.base_dtype)
    lora = LoraSpec(rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout, target_modules=targets,
                    train_head=cfg.lora.train_head, dtype=cfg.lora.dtype)
    return spec, lora


def profile_from_config(cfg, use_cache: bool = True, remeasure: bool | str = False) -> WorkloadProfile:
    """The profile a scenario's `model` section asks for: read from `profile_path`, else measured
    (or taken from the cache), with the scenario's cut dtype and gradient checkpointing applied.
    The cut layers are checked against the model's depth."""
    from .split import check_cuts

    if cfg.profile_path:
        path = Path(os.path.expanduser(cfg.profile_path))
        if not path.is_file():
            raise LearningError("no such profile file", field="model.profile_path", value=cfg.profile_path)
        try:
            profile = WorkloadProfile.load(path)
        except (ValueError, KeyError, TypeError) as err:
            raise LearningError(f"not a splitsim profile ({type(err).__name__})", field="model.profile_path",
                                value=cfg.profile_path) from None
    else:
        spec, lora = specs_from_config(cfg)
        profile = profile_model(spec, lora, cfg.batch_size, cfg.sequence_length, cfg.image_size, cfg.optimizer,
                                cfg.device, cfg.repeats, use_cache, remeasure=remeasure)
    check_cuts(cfg.cut_layers, profile.num_blocks)
    return profile.with_levers(None if cfg.cut_dtype == "auto" else cfg.cut_dtype, cfg.gradient_checkpointing)
