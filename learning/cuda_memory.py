"""What a training step holds on a CUDA GPU beyond the tensors the profile measures, term by term.

The profile's per-tier memory is the peak of the tensors a step holds, checked against the CPU
allocator's measured peak (tests/test_memory.py). A GPU's memory at the peak adds terms of two
kinds; each is given here with its source, and `benchmarks/bench_cuda_memory.py` holds the sum
against measured peaks that projects publish (learning/published_gpu_memory.py; the README's table).

Terms of the device (every CUDA process pays them; scenarios/devices.py charges them to GPU tiers):

- **CUDA context**: the driver's context, the loaded kernels and the cuBLAS / cuDNN handles live
  outside PyTorch's allocator, so `torch.cuda.max_memory_allocated` does not show them, but they
  take the card's memory before any tensor (PyTorch docs, "CUDA semantics: memory management":
  nvidia-smi shows more than the allocator holds). A few hundred MiB with lazy module loading
  (CUDA >= 11.7, PyTorch's default): `CUDA_CONTEXT_BYTES` = 0.5 GiB, uncertain by about +-0.2 GiB.
- **Caching-allocator slack**: PyTorch's caching allocator keeps freed blocks for reuse and serves
  requests of more than 1 MiB from 2 MiB-granular segments, so what it has reserved at the peak
  exceeds what the tensors hold: rounding, and blocks that cannot be split to fit (fragmentation;
  PyTorch docs, "PYTORCH_CUDA_ALLOC_CONF": `expandable_segments` reduces it). An estimate, not a
  published figure: `ALLOCATOR_SLACK_FRACTION` = 3 % of the allocated peak, likely 0-10 % for a
  training step's few large tensors.

A term of the recipe (what the user's training script does, not the device; the profile's split
step does not do it, so it applies only where a recipe does, `Recipe.kbit_upcast`):

- **peft's `prepare_model_for_kbit_training`**, the standard QLoRA set-up of the transformers
  ecosystem, casts every 16-bit parameter that is not quantised (the embeddings, the head, the
  norms) to float32 (peft, `peft.utils.other.prepare_model_for_kbit_training`). That costs 2 bytes
  per such parameter (`kbit_upcast_bytes`: 1.96 GiB for Llama-3.1-8B's untied embeddings and head),
  and it turns the residual stream float32: the embeddings' output is float32, every block adds its
  output to it (bitsandbytes casts each matmul's input to the compute dtype and its output back),
  and the float32 head gives float32 logits. With per-block checkpointing a step then holds in
  float32, 2 bytes more per element, each block's saved input, the head's input, the normalised
  input of the block being recomputed and the logits at the loss: `kbit_activation_bytes` =
  tokens x 2 x (hidden x (blocks + 2) + vocab). Tested against peft's own function on
  bitsandbytes-quantised models, measured by the CPU allocator (tests/test_cuda_memory.py: the
  difference it makes to a tier's measured peak, within 5 %).

Examined and left out: transformers before v4.49 computed the causal-LM loss on a contiguous float32
copy of the shifted logits (removed by transformers PR #35646). Measured on the CPU allocator with
that loss, a step's peak does not move: the copy is freed before the backward, whose log-softmax
gradient is the head's peak either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from splitsim.scenarios.devices import ALLOCATOR_SLACK_FRACTION, CUDA_CONTEXT_BYTES, GIB  # the device terms' one source

__all__ = ["ALLOCATOR_SLACK_FRACTION", "CUDA_CONTEXT_BYTES", "GIB", "CudaPeak", "Recipe", "fitting_length",
           "kbit_activation_bytes", "kbit_upcast_bytes", "max_sequence_length", "unquantised_16bit_params",
           "whole_model_cuda_peak"]


def kbit_upcast_bytes(unquantised_16bit_params: int) -> int:
    """What peft's `prepare_model_for_kbit_training` adds by casting the 16-bit parameters that are
    not quantised to float32: 2 more bytes each."""
    return 2 * unquantised_16bit_params


def kbit_activation_bytes(tokens: int, hidden_size: int, blocks: int, vocab_size: int = 0) -> int:
    """What the float32 residual stream of peft's kbit preparation adds to a checkpointed step that
    holds `blocks` blocks (and the head, when `vocab_size` > 0): 2 more bytes for each block's
    saved input, the recomputed block's normalised input, the head's input and each logit."""
    return 2 * tokens * (hidden_size * (blocks + 1 + (1 if vocab_size else 0)) + vocab_size)


def unquantised_16bit_params(spec) -> int:
    """Parameters of `spec`'s model (a learning.models.ModelSpec) that a QLoRA load keeps in 16 bits:
    everything but the blocks' linear layers (bitsandbytes quantises those; transformers leaves the
    head alone), each shared tensor once; 0 unless `spec.dtype` is 16-bit and the base quantised.
    Counted on the meta device (no storage)."""
    import torch

    from .lora import block_linear_names
    from .models import _model_class, architecture_of, build_config
    from .quant import QUANTISED

    if spec.base_dtype not in QUANTISED or spec.dtype not in ("bfloat16", "float16"):
        return 0
    config = build_config(spec)
    arch = architecture_of(config)
    with torch.device("meta"):
        model = _model_class(arch, spec.task, config)(config)
    quantised = {id(model.get_submodule(name).weight) for name in block_linear_names(model, arch)}
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in quantised:
            seen.add(id(p))
            total += p.numel()
    return total


@dataclass(frozen=True)
class CudaPeak:
    """A step's peak on a CUDA GPU, term by term (bytes). `tensors` is the profile's figure."""

    tensors: int
    kbit_upcast: int = 0
    kbit_activations: int = 0
    slack_fraction: float = ALLOCATOR_SLACK_FRACTION
    context: int = CUDA_CONTEXT_BYTES

    @property
    def allocated(self) -> int:
        """What `torch.cuda.max_memory_allocated` reports."""
        return self.tensors + self.kbit_upcast + self.kbit_activations

    @property
    def reserved(self) -> int:
        """What `torch.cuda.max_memory_reserved` reports (the allocator's slack on top)."""
        return int(self.allocated * (1 + self.slack_fraction))

    @property
    def device(self) -> int:
        """What the card must have (nvidia-smi at the peak): the reserved peak and the context."""
        return self.reserved + self.context


@dataclass(frozen=True)
class Recipe:
    """What a training script does that changes its memory: peft's kbit preparation (`kbit_upcast`)."""

    kbit_upcast: bool = False


def whole_model_cuda_peak(spec, lora, batch_size: int, sequence_length: int, recipe: Recipe = Recipe(),
                          optimizer: str = "adamw") -> CudaPeak:
    """The whole model's (FL's, or one GPU's) peak on a CUDA GPU under `recipe`: the weight-free
    profile's figure with per-block gradient checkpointing, plus the CUDA terms."""
    from .models import build_config
    from .profile import profile_model
    from .quant import QUANTISED

    weight_free = spec if spec.weights == "none" else replace(spec, weights="none")
    profile = profile_model(weight_free, lora, batch_size, sequence_length, optimizer=optimizer, use_cache=False,
                            timed=False)
    tensors = profile.with_levers(None, ("user",)).whole().peak_memory_bytes
    if not recipe.kbit_upcast or spec.base_dtype not in QUANTISED:
        return CudaPeak(tensors=tensors)
    config = build_config(spec)
    vocab = config.vocab_size if spec.task == "causal_lm" else 0
    return CudaPeak(tensors=tensors, kbit_upcast=kbit_upcast_bytes(unquantised_16bit_params(spec)),
                    kbit_activations=kbit_activation_bytes(batch_size * sequence_length, config.hidden_size,
                                                           profile.num_blocks, vocab))


def max_sequence_length(spec, lora, batch_size: int, card_bytes: int, recipe: Recipe = Recipe(),
                        probes: tuple[int, int] = (1024, 8192), optimizer: str = "adamw") -> int | None:
    """The longest sequence whose step fits a card of `card_bytes` (the device figure, context
    included), or None when not even a short one does. A checkpointed step's memory is affine in
    the sequence length (flash attention keeps O(seq) per block); it is measured at the two `probes`."""
    peaks = [whole_model_cuda_peak(spec, lora, batch_size, s, recipe, optimizer) for s in probes]
    return fitting_length(probes, [p.device for p in peaks], card_bytes)


def fitting_length(probes, device_bytes, card_bytes: int) -> int | None:
    """The longest length whose affine memory (through (probes[i], device_bytes[i])) is at most
    `card_bytes`; None when even length 0 is over it."""
    slope = (device_bytes[1] - device_bytes[0]) / (probes[1] - probes[0])
    intercept = device_bytes[0] - slope * probes[0]
    if intercept > card_bytes or slope <= 0:
        return None
    return int((card_bytes - intercept) / slope)
