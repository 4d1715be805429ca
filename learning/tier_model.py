"""One device's share of a split LoRA step: what a testbed device process runs and times (issue #24).

A `TierModel` is the scenario's model (pretrained or built from its config, with the scenario's LoRA)
cut at the scenario's cuts, of which a device keeps one tier (FL: the whole model). Its steps are the
same code the device processes and the host calibration run, so the simulator is calibrated on
exactly the work the emulation does (analysis/testbed/roles.py):

- `forward_first(batch)` -> (activations in the cut dtype, side tensors): the user's forward;
- `forward_backward(activations, side)` -> the activations' gradient in the cut dtype: a later tier's
  forward, its backward (from the loss on the last tier, or from the gradient that came back), and
  its optimizer step;
- `backward_first(gradient)`: the user's backward from the gradient that came back, and its step.

Batches are synthetic (random token ids, full attention mask, random labels, the profile's shape):
a step's time and the bytes it sends do not depend on the tokens' values.
"""

from __future__ import annotations

import torch

from .lora import apply_lora
from .models import build_model
from .profile import specs_from_config, synthetic_batch
from .split import split_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def fedavg_into(target: dict[str, torch.Tensor], states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The plain average of `states` (equal data per user), written into fresh tensors."""
    return {name: torch.stack([s[name].float() for s in states]).mean(0).to(target[name].dtype) for name in target}


class TierModel:
    """The scenario's model, its tiers, and the trainable state of tier `tier` (None: the whole model)."""

    def __init__(self, model_cfg, cuts: list[int], tier: int | None, threads: int = 1, seed: int = 0):
        torch.set_num_threads(threads)
        spec, lora = specs_from_config(model_cfg)
        model, arch = build_model(spec)
        self.model = apply_lora(model, arch, lora)
        self.model.train()
        self.arch, self.task = arch, spec.task
        self.config = self.model.get_base_model().config
        self.cut_dtype = None if model_cfg.cut_dtype == "auto" else DTYPES[model_cfg.cut_dtype]
        self.lr = 1e-4
        self.optimizer_kind = model_cfg.optimizer
        self.tier = tier
        self.tiers = [] if tier is None else split_model(self.model, arch, spec.task, cuts)
        self.module: torch.nn.Module = self.model if tier is None else self.tiers[tier]
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        names = {id(p): n for n, p in self.model.named_parameters()}
        self.names = [names[id(p)] for p in self.params]
        self.batch_size, self.sequence_length = model_cfg.batch_size, model_cfg.sequence_length
        self.image_size = model_cfg.image_size
        self.seed = seed
        self.optimizer = self.new_optimizer()
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    # ---- state -----------------------------------------------------------------------------------
    def new_optimizer(self) -> torch.optim.Optimizer | None:
        if self.optimizer_kind == "none" or not self.params:
            return None
        if self.optimizer_kind == "sgd":
            return torch.optim.SGD(self.params, lr=self.lr, momentum=0.9)
        return torch.optim.AdamW(self.params, lr=self.lr)

    def state(self) -> dict[str, torch.Tensor]:
        """The tier's trainable tensors (what FedAvg moves), by parameter name."""
        return {n: p.detach().clone() for n, p in zip(self.names, self.params)}

    def state_of(self, tier: int) -> dict[str, torch.Tensor]:
        """Tier `tier`'s trainable tensors (its initial adapter, for the device that distributes it)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        return {names[id(p)]: p.detach().clone() for p in self.tiers[tier].parameters() if p.requires_grad}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, p in zip(self.names, self.params):
                p.copy_(state[n])

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        return synthetic_batch(self.arch, self.task, self.config, self.batch_size, self.sequence_length,
                               self.image_size, torch.device("cpu"), seed=self.seed * 1_000_003 + index)

    def example_input(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What arrives at this (later) tier for batch 0: the earlier tiers' output, without gradients."""
        with torch.no_grad():
            out, side = self.tiers[0](self.batch(0))
            for earlier in self.tiers[1:self.tier]:
                out, side = earlier(out.hidden, side)
        return self._wire(out.hidden), side

    def _step(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def _wire(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to(self.cut_dtype) if self.cut_dtype is not None else tensor.detach()

    # ---- steps -----------------------------------------------------------------------------------
    def forward_first(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, side = self.module(batch)
        self._pending = (out.hidden, None)
        return self._wire(out.hidden), {k: v.detach() for k, v in side.items()}

    def forward_backward(self, activations: torch.Tensor, side: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The last tier's step on `activations`: forward to the loss, backward, optimizer step; the
        activations' gradient in the cut dtype (a middle tier uses `forward_middle` / `backward_middle`)."""
        dtype = next(self.module.parameters()).dtype
        arrived = activations.to(dtype).requires_grad_(True)
        out, _ = self.module(arrived, side)
        out.loss.backward()
        self._step()
        return None if arrived.grad is None else self._wire(arrived.grad)

    def forward_middle(self, activations: torch.Tensor, side: dict[str, torch.Tensor]) -> torch.Tensor:
        """A middle tier's forward (SplitLLM's edge): its output activations in the cut dtype."""
        dtype = next(self.module.parameters()).dtype
        arrived = activations.to(dtype).requires_grad_(True)
        out, _ = self.module(arrived, side)
        self._pending = (out.hidden, arrived)
        return self._wire(out.hidden)

    def backward_middle(self, gradient: torch.Tensor) -> torch.Tensor:
        """A middle tier's backward from its output's gradient, and its step: its input's gradient."""
        hidden, arrived = self._pending
        self._pending = None
        hidden.backward(gradient.to(hidden.dtype))
        self._step()
        return self._wire(arrived.grad)

    def backward_first(self, gradient: torch.Tensor) -> None:
        hidden, _ = self._pending
        self._pending = None
        hidden.backward(gradient.to(hidden.dtype))
        self._step()

    def whole_step(self, batch: dict[str, torch.Tensor]) -> None:
        """FL: a whole-model step (forward, backward, optimizer step)."""
        self.model(**batch).loss.backward()
        self._step()

