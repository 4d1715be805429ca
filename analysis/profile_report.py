"""Tables of a WorkloadProfile: every cut, the tiers at the scenario's cuts, per-scheme traffic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from splitsim.optimizer.delay_model import batches_per_user, samples_per_user
from splitsim.scenarios import Scenario, WorkloadProfile

GIB = 2**30


def batches_per_round(scenario: Scenario) -> np.ndarray:
    """Full mini-batches each user trains per round (one local epoch, last partial batch dropped),
    shape (K,): the simulator's own definition (optimizer.delay_model.batches_per_user)."""
    samples = samples_per_user(scenario.workload, scenario.cell.users, scenario.seed)
    return batches_per_user(samples, scenario.model.batch_size)


def describe_batches(batches: np.ndarray) -> str:
    low, high = int(batches.min()), int(batches.max())
    return f"{low}" if low == high else f"{low}-{high} (mean {batches.mean():.3g})"


def cut_table(profile: WorkloadProfile) -> pd.DataFrame:
    """One row per candidate cut: what crosses it per batch, and the user tier it leaves behind."""
    rows = []
    for b in map(profile.boundary, range(profile.num_blocks + 1)):  # in the cut dtype
        user = profile.tier(0, b.cut, "user")
        rows.append({"cut": b.cut, "activation_shape": "x".join(map(str, b.shape)), "dtype": b.dtype,
                     "forward_bytes": b.forward_bytes, "side_bytes": b.side_bytes, "backward_bytes": b.backward_bytes,
                     "user_lora_params": user.lora_params,
                     "user_gflop_per_sample": user.flops / profile.batch_size / 1e9,
                     "user_step_s": user.forward_s + user.backward_s,
                     "user_peak_memory_gib": user.peak_memory_bytes / GIB})
    return pd.DataFrame(rows)


def tier_table(profile: WorkloadProfile, cuts: list[int]) -> pd.DataFrame:
    rows = []
    for t in profile.tiers(cuts):
        rows.append({"tier": t.name, "blocks": f"{t.start}-{t.stop - 1}" if t.stop > t.start else "-",
                     "frozen_params": t.frozen_params, "lora_params": t.lora_params,
                     "head_params": t.other_trainable_params, "adapter_mib": t.adapter_bytes / 2**20,
                     "fwd_gflop_per_sample": t.forward_flops / profile.batch_size / 1e9,
                     "bwd_gflop_per_sample": t.backward_flops / profile.batch_size / 1e9,
                     "step_s": t.forward_s + t.backward_s,
                     "params_gib": t.param_bytes / GIB, "grads_optimizer_gib": (t.grad_bytes + t.optimizer_bytes) / GIB,
                     "activations_gib": (t.activation_bytes + t.transient_bytes) / GIB,
                     "peak_memory_gib": t.peak_memory_bytes / GIB})
    whole = profile.whole()
    rows.append({"tier": "whole (FL)", "blocks": f"0-{profile.num_blocks - 1}", "frozen_params": whole.frozen_params,
                 "lora_params": whole.lora_params, "head_params": whole.other_trainable_params,
                 "adapter_mib": whole.adapter_bytes / 2**20,
                 "fwd_gflop_per_sample": whole.forward_flops / profile.batch_size / 1e9,
                 "bwd_gflop_per_sample": whole.backward_flops / profile.batch_size / 1e9,
                 "step_s": whole.forward_s + whole.backward_s, "params_gib": whole.param_bytes / GIB,
                 "grads_optimizer_gib": (whole.grad_bytes + whole.optimizer_bytes) / GIB,
                 "activations_gib": (whole.activation_bytes + whole.transient_bytes) / GIB,
                 "peak_memory_gib": whole.peak_memory_bytes / GIB})
    return pd.DataFrame(rows)


def traffic_table(profile: WorkloadProfile, scenario: Scenario) -> pd.DataFrame:
    """User-side communication per round and user, per scheme (the column of SplitLLM Table II).

    SplitLLM and SL: activations + gradients at the first cut over one local epoch; FL: the whole
    model's trainable parameters up and down; SFL: SL's traffic plus the client adapter up and the
    aggregate down; SL the user adapter handed on after every turn and back. Batches per round are
    the mean over users of floor(D_k / batch), as in the simulator. `with_side` adds the attention
    masks, labels and pooling indices.
    """
    cut = scenario.model.cut_layers[0]
    batches = float(np.mean(batches_per_round(scenario)))
    user = profile.tier(0, cut, "user")
    b = profile.boundary(cut)
    split = batches * (b.forward_bytes + b.backward_bytes)
    side = split + batches * b.side_bytes
    adapters = 2 * user.adapter_bytes  # the user tier's adapter up after its turn or round, and back
    rows = [
        {"scheme": "SplitLLM", "activations_gradients_gib": split / GIB, "with_side_tensors_gib": side / GIB,
         "adapters_gib": adapters / GIB},
        {"scheme": "SL", "activations_gradients_gib": split / GIB, "with_side_tensors_gib": side / GIB,
         "adapters_gib": adapters / GIB},
        {"scheme": "SFL", "activations_gradients_gib": split / GIB, "with_side_tensors_gib": side / GIB,
         "adapters_gib": adapters / GIB},
        {"scheme": "FL", "activations_gradients_gib": 0.0, "with_side_tensors_gib": 0.0,
         "adapters_gib": profile.fl_traffic_bytes() / GIB},
    ]
    frame = pd.DataFrame(rows)
    frame["table_ii_gib"] = [split / GIB, split / GIB, split / GIB, profile.fl_traffic_bytes() / GIB]
    return frame


def format_frame(frame: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [list(frame.columns)] + [[fmt(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(frame.columns))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
