"""FedAvg: the weighted average of state dicts, one pure function (tested against numpy.average)."""

from __future__ import annotations

import torch

from .errors import LearningError


def fedavg(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """sum_i w_i·state_i / sum_i w_i, key by key. States with weight 0 (users without data) drop out.

    All states must have the same keys and shapes; at least one weight must be positive.
    """
    if len(states) != len(weights):
        raise LearningError("one weight per state", field="fedavg.weights", value=len(weights))
    pairs = [(s, float(w)) for s, w in zip(states, weights) if w > 0]
    if not pairs:
        raise LearningError("no participant has data to average", field="fedavg.weights", value=list(weights))
    keys = pairs[0][0].keys()
    for s, _ in pairs[1:]:
        if s.keys() != keys:
            raise LearningError("states have different keys", field="fedavg.states", value=sorted(set(s) ^ set(keys)))
    total = sum(w for _, w in pairs)
    out = {}
    for key in keys:
        acc = torch.zeros_like(pairs[0][0][key], dtype=torch.float64)
        for s, w in pairs:
            acc += s[key].to(torch.float64) * (w / total)
        out[key] = acc.to(pairs[0][0][key].dtype)
    return out
