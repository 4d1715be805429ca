"""Split a (LoRA-wrapped) transformer into ordered tiers at cut layers, and run split steps.

Cut c (0 <= c <= N for N blocks) is the boundary after c blocks: cuts [1] give the SFL/SL pair
(user: embeddings + block 0; server: blocks 1.. + head), cuts [1, 6] the SplitLLM triple (user |
edge | cloud). Each `Tier` is an nn.Module that registers only its own submodules, so
`tier.parameters()` holds only what lives on that tier. Between tiers only tensors travel: the
activations forward (detached, then requiring grad on the receiving side) with a few small side
tensors (the 0/1 attention mask, the labels, the pooling index), and the gradient of the
activations backward.

The tier forwards call the same modules and the same mask helpers as the transformers models, so
a split step reproduces the unsplit step's loss and gradients to float tolerance (tests).
"""

from __future__ import annotations

import functools

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import LearningError
from .models import block_list

Batch = dict[str, torch.Tensor]


def _base(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """The loss transformers' sequence classifiers use: MSE (1 label), CE (int labels), BCE otherwise."""
    if num_labels == 1:
        return nn.functional.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
    if labels.dtype in (torch.long, torch.int):
        return nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, vocab_size: int) -> torch.Tensor:
    from transformers.loss.loss_utils import ForCausalLMLoss

    return ForCausalLMLoss(logits, labels, vocab_size=vocab_size)


@dataclass
class TierOutput:
    hidden: torch.Tensor | None = None  # activations leaving this tier (None for the last tier)
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@functools.lru_cache(maxsize=1)
def _no_cache() -> dict:
    """The mask helpers' "no KV cache" argument: `cache` since transformers 5.x, which warns on
    the older `past_key_values` (FutureWarning on every profile otherwise)."""
    import inspect

    from transformers.masking_utils import create_causal_mask

    name = "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"
    return {name: None}


class Tier(nn.Module):
    """Blocks [start, stop) of a model; the first tier also owns the embeddings, the last the head."""

    def __init__(self, model: nn.Module, arch: str, task: str, start: int, stop: int, first: bool, last: bool,
                 name: str):
        super().__init__()
        base = _base(model)
        self.arch, self.task, self.start, self.stop = arch, task, start, stop
        self.first, self.last, self.tier_name = first, last, name
        self.checkpointing = False  # per-block gradient checkpointing (torch.utils.checkpoint)
        self.config = base.config
        self.blocks = nn.ModuleList(list(block_list(model, arch))[start:stop])
        if arch == "bert":
            self.embeddings = base.bert.embeddings if first else None
            self.head = nn.ModuleDict({"pooler": base.bert.pooler, "dropout": base.dropout,
                                       "classifier": base.classifier}) if last else None
        elif arch == "vit":
            self.embeddings = base.vit.embeddings if first else None
            self.head = nn.ModuleDict({"layernorm": base.vit.layernorm, "classifier": base.classifier}) if last else None
        elif arch == "gpt2":
            t = base.transformer
            self.embeddings = nn.ModuleDict({"wte": t.wte, "wpe": t.wpe, "drop": t.drop}) if first else None
            out = base.score if task == "classification" else base.lm_head
            self.head = nn.ModuleDict({"norm": t.ln_f, "out": out}) if last else None
        else:
            m = base.model
            self.embeddings = m.embed_tokens if first else None
            self.rotary = m.rotary_emb  # no parameters: every tier computes its own position embeddings
            out = base.score if task == "classification" else base.lm_head
            self.head = nn.ModuleDict({"norm": m.norm, "out": out}) if last else None

    # ---- the three pieces --------------------------------------------------------------------
    def embed(self, batch: Batch) -> tuple[torch.Tensor, Batch]:
        """Input batch -> (first activations, side tensors that travel with them)."""
        side: Batch = {}
        if "labels" in batch:
            side["labels"] = batch["labels"]
        if self.arch == "vit":
            pixels = batch["pixel_values"]
            pixels = pixels.to(self.embeddings.patch_embeddings.projection.weight.dtype)
            return self.embeddings(pixels), side
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        side["attention_mask"] = (torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool())
        if self.arch == "bert":
            return self.embeddings(input_ids=ids, token_type_ids=batch.get("token_type_ids")), side
        if self.task == "classification":
            pad = self.config.pad_token_id
            non_pad = (ids != pad).to(torch.int32)
            index = torch.arange(ids.shape[-1], device=ids.device, dtype=torch.int32)
            side["pool_index"] = (index * non_pad).argmax(-1)
        if self.arch == "gpt2":
            positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
            e = self.embeddings
            return e["drop"](e["wte"](ids) + e["wpe"](positions)), side
        return self.embeddings(ids), side

    def _block_context(self, hidden: torch.Tensor, side: Batch) -> dict:
        from transformers.masking_utils import create_bidirectional_mask, create_causal_mask

        if self.arch == "vit":
            return {}
        mask2d = side["attention_mask"]
        if mask2d.device.type == "meta":  # a weight-free profile: unpadded synthetic batches, so no padding mask
            mask2d = None
        if self.arch == "bert":
            return {"mask": create_bidirectional_mask(config=self.config, inputs_embeds=hidden,
                                                      attention_mask=mask2d)}
        positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        # (without a padding mask, position ids would only serve to detect packed sequences: not ours)
        kwargs = dict(config=self.config, inputs_embeds=hidden, attention_mask=mask2d, **_no_cache(),
                      position_ids=positions if mask2d is not None else None)
        ctx = {"positions": positions, "mask": create_causal_mask(**kwargs)}
        if self.arch == "decoder":
            from transformers.masking_utils import create_sliding_window_causal_mask

            # the masks the model itself builds: per layer type (Qwen2/3, Gemma 2), or a sliding
            # window for every layer (Mistral, Phi-3), or causal (Llama)
            layer_types = getattr(self.config, "layer_types", None)
            if layer_types is not None:
                masks = {"full_attention": ctx["mask"]}
                if "sliding_attention" in layer_types:
                    masks["sliding_attention"] = create_sliding_window_causal_mask(**kwargs)
                ctx["block_masks"] = [masks[layer_types[i]] for i in range(self.start, self.stop)]
            elif getattr(self.config, "sliding_window", None) is not None:
                ctx["mask"] = create_sliding_window_causal_mask(**kwargs)
            ctx["rope"] = self.rotary(hidden, position_ids=positions)
        return ctx

    def run_blocks(self, hidden: torch.Tensor, side: Batch,
                   around_block: Callable[[int], object] | None = None) -> torch.Tensor:
        if len(self.blocks) == 0:
            return hidden
        ctx = self._block_context(hidden, side)
        for i, block in enumerate(self.blocks):
            with (around_block(self.start + i) if around_block else nullcontext()):
                if self.checkpointing and torch.is_grad_enabled():
                    # keep only the block's input; recompute its forward during the backward
                    from torch.utils.checkpoint import checkpoint

                    hidden = checkpoint(self._run_block, i, block, hidden, ctx, use_reentrant=False)
                else:
                    hidden = self._run_block(i, block, hidden, ctx)
        return hidden

    def _run_block(self, i: int, block: nn.Module, hidden: torch.Tensor, ctx: dict) -> torch.Tensor:
        if self.arch == "bert":
            return block(hidden, ctx["mask"])
        if self.arch == "vit":
            return block(hidden, None)
        if self.arch == "gpt2":
            return block(hidden, None, ctx["mask"], None, use_cache=False, position_ids=ctx["positions"])
        mask = ctx["block_masks"][i] if "block_masks" in ctx else ctx["mask"]
        return block(hidden, attention_mask=mask, position_embeddings=ctx["rope"], position_ids=ctx["positions"])

    def run_head(self, hidden: torch.Tensor, side: Batch) -> tuple[torch.Tensor | None, torch.Tensor]:
        h = self.head
        labels = side.get("labels")
        if self.arch == "bert":
            logits = h["classifier"](h["dropout"](h["pooler"](hidden)))
        elif self.arch == "vit":
            logits = h["classifier"](h["layernorm"](hidden)[:, 0, :])
        else:
            logits = h["out"](h["norm"](hidden))
            cap = getattr(self.config, "final_logit_softcapping", None) if self.task == "causal_lm" else None
            if cap is not None:  # Gemma 2's causal-LM head
                logits = torch.tanh(logits / cap) * cap
            if self.task == "classification":
                logits = logits[torch.arange(logits.shape[0], device=logits.device), side["pool_index"]]
            elif labels is not None:
                return causal_lm_loss(logits, labels, self.config.vocab_size), logits
        loss = classification_loss(logits, labels, self.config.num_labels) if labels is not None else None
        return loss, logits

    def forward(self, inputs: Batch | torch.Tensor, side: Batch | None = None) -> tuple[TierOutput, Batch]:
        """First tier: forward(batch); later tiers: forward(activations, side)."""
        if self.first:
            hidden, side = self.embed(inputs)
        else:
            hidden = inputs
        hidden = self.run_blocks(hidden, side)
        if self.last:
            loss, logits = self.run_head(hidden, side)
            return TierOutput(loss=loss, logits=logits), side
        return TierOutput(hidden=hidden), side


def check_cuts(cut_layers: list[int] | tuple[int, ...], num_blocks: int, field_name: str = "model.cut_layers") -> list[int]:
    """Cuts must be integers, strictly increasing, within [0, N]."""
    cuts = list(cut_layers)
    if not cuts:
        raise LearningError("needs at least one cut layer", field=field_name, value=cuts)
    for c in cuts:
        if not isinstance(c, int) or isinstance(c, bool) or c < 0 or c > num_blocks:
            raise LearningError(f"cut layers must be integers in [0, {num_blocks}] (the model has {num_blocks} "
                                "blocks; cut c splits after c blocks)", field=field_name, value=cuts)
    if any(b <= a for a, b in zip(cuts, cuts[1:])):
        raise LearningError("cut layers must be strictly increasing", field=field_name, value=cuts)
    return cuts


TIER_NAMES = {2: ("user", "server"), 3: ("user", "edge", "cloud")}


def split_model(model: nn.Module, arch: str, task: str, cut_layers: list[int]) -> list[Tier]:
    """Tiers of `model` at `cut_layers` (tier t holds blocks [cut_{t-1}, cut_t))."""
    n = len(block_list(model, arch))
    cuts = check_cuts(cut_layers, n)
    bounds = [0, *cuts, n]
    count = len(bounds) - 1
    names = TIER_NAMES.get(count, tuple(f"tier{t}" for t in range(count)))
    return [Tier(model, arch, task, bounds[t], bounds[t + 1], first=t == 0, last=t == count - 1, name=names[t])
            for t in range(count)]


@dataclass
class Crossing:
    """What crossed one cut in a split step: activations forward, their gradient backward."""

    cut: int
    activation: torch.Tensor
    gradient: torch.Tensor | None
    side: Batch

    @property
    def forward_bytes(self) -> int:
        return self.activation.nbytes

    @property
    def side_bytes(self) -> int:
        return sum(t.nbytes for t in self.side.values())

    @property
    def backward_bytes(self) -> int:
        return 0 if self.gradient is None else self.gradient.nbytes


@dataclass
class SplitStepResult:
    loss: torch.Tensor
    logits: torch.Tensor
    crossings: list[Crossing] = field(default_factory=list)


class _Phases:
    """Default instrumentation: none."""

    def forward(self, tier_index: int):
        return nullcontext()

    def backward(self, tier_index: int):
        return nullcontext()


def split_step(tiers: list[Tier], batch: Batch, phases=None, loss_scale: float = 1.0) -> SplitStepResult:
    """One forward and backward pass through `tiers`, passing only tensors across the cuts.

    Gradients accumulate in each tier's parameters (call the optimizers afterwards). `phases`
    may provide `forward(t)` / `backward(t)` context managers around each tier's work.
    """
    phases = phases or _Phases()
    crossings: list[Crossing] = []
    received: list[tuple[torch.Tensor, torch.Tensor]] = []  # (sent by tier t, received by tier t+1)
    with phases.forward(0):
        out, side = tiers[0](batch)
    for t, tier in enumerate(tiers[1:], start=1):
        sent = out.hidden
        # a gradient goes back only if something upstream trains (a frozen user tier needs none)
        arrived = sent.detach().requires_grad_(sent.requires_grad)
        arrived_side = {k: v.detach() for k, v in side.items()}
        crossings.append(Crossing(cut=tier.start, activation=arrived, gradient=None, side=arrived_side))
        received.append((sent, arrived))
        with phases.forward(t):
            out, side = tier(arrived, arrived_side)
    if out.loss is None:
        raise LearningError("the batch has no labels, so there is no loss to train on", field="batch.labels")
    with phases.backward(len(tiers) - 1):
        (out.loss * loss_scale).backward()
    for t in range(len(tiers) - 2, -1, -1):
        sent, arrived = received[t]
        if arrived.grad is None:
            continue
        crossings[t].gradient = arrived.grad.detach()
        with phases.backward(t):
            sent.backward(arrived.grad)
    return SplitStepResult(loss=out.loss.detach(), logits=out.logits.detach(), crossings=crossings)


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
