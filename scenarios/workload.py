"""`WorkloadProfile`: what real split steps of a model measured, torch-free, saved as JSON.

A profile is measured once for a model, a batch shape, a LoRA setting and a dtype, with the model
split at *every* block boundary, so the numbers of any cut configuration are sums over segments:
segment 0 is the embeddings, segment i (1..N) is block i-1, segment N+1 is the head. Boundary c
(0..N) is the cut after c blocks. Per-batch figures; divide by `batch_size` for per-sample ones.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

OPTIMIZER_STATE_FACTOR = {"adamw": 2.0, "sgd": 1.0, "none": 0.0}  # state tensors per trainable parameter
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
TIER_ROLES = ("user", "edge", "server")  # first tier, middle tier, last tier ("cloud" is the last tier too)


@dataclass(frozen=True)
class SegmentProfile:
    """One piece of the model (embeddings, one block, or the head), per batch."""

    name: str
    frozen_params: int
    lora_params: int
    other_trainable_params: int  # e.g. the classification head
    param_bytes: int  # every parameter, in its dtype
    trainable_bytes: int  # trainable parameters (LoRA + head), in their dtype
    forward_flops: float
    backward_flops: float
    forward_s: float  # measured on `device`
    backward_s: float
    saved_bytes: int  # tensors kept for the backward pass (activations), excluding parameters
    transient_bytes: int = 0  # further peak while computing (CUDA allocator; 0 when not measured)

    @property
    def trainable_params(self) -> int:
        return self.lora_params + self.other_trainable_params


@dataclass(frozen=True)
class BoundaryProfile:
    """What crosses the cut after `cut` blocks, per batch."""

    cut: int
    shape: list[int]
    dtype: str
    forward_bytes: int  # the activations
    side_bytes: int  # attention mask, labels, pooling index travelling with them
    backward_bytes: int  # the gradient of the activations (0 when nothing upstream trains)


@dataclass(frozen=True)
class TierSummary:
    """A tier (blocks [start, stop), plus embeddings if first and head if last), per batch."""

    name: str
    start: int
    stop: int
    frozen_params: int
    lora_params: int
    other_trainable_params: int
    adapter_bytes: int  # trainable parameters: what FedAvg moves for this tier
    forward_flops: float
    backward_flops: float
    forward_s: float
    backward_s: float
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    transient_bytes: int

    @property
    def peak_memory_bytes(self) -> int:
        return (self.param_bytes + self.grad_bytes + self.optimizer_bytes + self.activation_bytes
                + self.transient_bytes)

    @property
    def flops(self) -> float:
        return self.forward_flops + self.backward_flops


@dataclass(frozen=True)
class WorkloadProfile:
    model: str
    architecture: str
    task: str
    dtype: str
    batch_size: int
    sequence_length: int | None
    image_size: int | None
    num_labels: int
    lora_rank: int
    lora_alpha: float
    lora_targets: str
    optimizer: str
    num_blocks: int
    device: str
    segments: list[SegmentProfile]
    boundaries: list[BoundaryProfile]
    environment: dict = field(default_factory=dict)  # torch / transformers versions, time, host
    # ---- levers applied to the measured step (scenario `model` fields; `with_levers`) ----------
    cut_dtype: str | None = None  # dtype of what crosses a cut; None: the compute dtype
    checkpointing: tuple[str, ...] = ()  # tier roles (TIER_ROLES) that recompute their blocks
    # ---- parameters the embeddings share with the head (tied embeddings): counted in both the
    # first and the last segment, since each tier of a split holds a copy; once in the whole model.
    tied_frozen_params: int = 0
    tied_trainable_params: int = 0
    tied_param_bytes: int = 0
    tied_trainable_bytes: int = 0

    def with_levers(self, cut_dtype: str | None = None, checkpointing=()) -> WorkloadProfile:
        """This profile with the activations and their gradients cast to `cut_dtype` at every cut,
        and per-block gradient checkpointing on the tiers whose role is in `checkpointing`."""
        roles = tuple(sorted({"server" if r == "cloud" else r for r in checkpointing}))
        unknown = [r for r in roles if r not in TIER_ROLES]
        if unknown:
            raise ValueError(f"unknown tier role(s) {unknown}; use user, edge, server or cloud")
        if cut_dtype is not None and cut_dtype not in DTYPE_BYTES:
            raise ValueError(f"unknown cut dtype {cut_dtype!r}; use one of {sorted(DTYPE_BYTES)}")
        return replace(self, cut_dtype=None if cut_dtype == self.dtype else cut_dtype, checkpointing=roles)

    # ---- derived -----------------------------------------------------------------------------
    def boundary(self, cut: int) -> BoundaryProfile:
        """What crosses cut `cut`, in `cut_dtype` when one is set (the side tensors keep theirs)."""
        b = self.boundaries[cut]
        if self.cut_dtype is None or b.dtype not in DTYPE_BYTES:
            return b
        scale = DTYPE_BYTES[self.cut_dtype] / DTYPE_BYTES[b.dtype]
        return replace(b, dtype=self.cut_dtype, forward_bytes=int(b.forward_bytes * scale),
                       backward_bytes=int(b.backward_bytes * scale))

    def role(self, start: int, stop: int) -> str:
        """user (holds the embeddings), server (holds the head: SFL's server, SplitLLM's cloud) or edge."""
        return "user" if start == 0 else ("server" if stop == self.num_blocks else "edge")

    def tier(self, start: int, stop: int, name: str = "") -> TierSummary:
        """Blocks [start, stop); the embeddings come with start = 0, the head with stop = N.

        A tier with gradient checkpointing keeps only each block's input through the forward pass
        and recomputes the block's forward in the backward (as transformers' per-block
        checkpointing does): its saved bytes are the block inputs plus what the embeddings and the
        head save, its transient the largest block's saved plus transient bytes, its backward FLOPs
        and time grow by the blocks' forward ones."""
        lo = 0 if start == 0 else start + 1
        hi = self.num_blocks + 2 if stop == self.num_blocks else stop + 1
        segs = self.segments[lo:hi]
        blocks = self.segments[start + 1:stop + 1]  # segment i + 1 is block i
        others = ([self.segments[0]] if start == 0 else []) + ([self.segments[-1]] if stop == self.num_blocks else [])
        whole = start == 0 and stop == self.num_blocks  # tied embeddings are one tensor there, not two
        trainable = sum(s.trainable_bytes for s in segs) - (self.tied_trainable_bytes if whole else 0)
        saved = sum(s.saved_bytes for s in segs)
        transient = max((s.transient_bytes for s in segs), default=0)
        recompute_flops = recompute_s = 0.0
        if blocks and self.role(start, stop) in self.checkpointing:
            saved = sum(s.saved_bytes for s in others) + sum(self.boundaries[i].forward_bytes
                                                             for i in range(start, stop))
            transient = max([s.transient_bytes for s in others]
                            + [s.saved_bytes + s.transient_bytes for s in blocks])
            recompute_flops, recompute_s = sum(s.forward_flops for s in blocks), sum(s.forward_s for s in blocks)
        return TierSummary(
            name=name, start=start, stop=stop,
            frozen_params=sum(s.frozen_params for s in segs) - (self.tied_frozen_params if whole else 0),
            lora_params=sum(s.lora_params for s in segs),
            other_trainable_params=sum(s.other_trainable_params for s in segs)
            - (self.tied_trainable_params if whole else 0), adapter_bytes=trainable,
            forward_flops=sum(s.forward_flops for s in segs),
            backward_flops=sum(s.backward_flops for s in segs) + recompute_flops,
            forward_s=sum(s.forward_s for s in segs), backward_s=sum(s.backward_s for s in segs) + recompute_s,
            param_bytes=sum(s.param_bytes for s in segs) - (self.tied_param_bytes if whole else 0), grad_bytes=trainable,
            optimizer_bytes=int(OPTIMIZER_STATE_FACTOR.get(self.optimizer, 2.0) * trainable),
            activation_bytes=saved, transient_bytes=transient,
        )

    def tiers(self, cuts: list[int], names: tuple[str, ...] | None = None) -> list[TierSummary]:
        bounds = [0, *cuts, self.num_blocks]
        default = {2: ("user", "server"), 3: ("user", "edge", "cloud")}.get(len(bounds) - 1)
        names = names or default or tuple(f"tier{i}" for i in range(len(bounds) - 1))
        return [self.tier(bounds[i], bounds[i + 1], names[i]) for i in range(len(bounds) - 1)]

    def whole(self) -> TierSummary:
        """The unsplit model (FL: everything on the user device)."""
        return self.tier(0, self.num_blocks, "whole")

    # ---- user-side traffic per round (SplitLLM Table II) -------------------------------------
    def split_traffic_bytes(self, cut: int, batches: int, with_side: bool = False) -> int:
        """Activations + gradients at `cut` over `batches` mini-batches (SplitLLM and SL users)."""
        b = self.boundary(cut)
        return batches * (b.forward_bytes + b.backward_bytes + (b.side_bytes if with_side else 0))

    def fl_traffic_bytes(self) -> int:
        """The whole model's trainable parameters up and down once (FL users)."""
        return 2 * self.whole().adapter_bytes

    # ---- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WorkloadProfile:
        data = dict(data)
        data["segments"] = [SegmentProfile(**s) for s in data["segments"]]
        data["boundaries"] = [BoundaryProfile(**b) for b in data["boundaries"]]
        data["checkpointing"] = tuple(data.get("checkpointing", ()))
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # parallel writers never collide
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> WorkloadProfile:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(data.get("profile", data))
