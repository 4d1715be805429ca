"""Allocations with equal bandwidth: BA (eta fixed) and, for a given eta, the EB building block."""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs

from .delay_model import counts_for, per_user_delay_s, upload_seconds


def equal_bandwidth_allocation(inputs: DelayInputs, eta: float, strategy: str = "BA") -> Allocation:
    """Every user gets B_s/K and B_c/K; upload times follow from the rates (closed form)."""
    k = inputs.users
    b_s = np.full(k, inputs.uplink_main_bandwidth_hz / k)
    b_c = np.full(k, inputs.uplink_fed_bandwidth_hz / k)
    t_s = upload_seconds(inputs.activation_bits, b_s, inputs.snr_coeff_main_hz)
    t_c = upload_seconds(inputs.adapter_bits, b_c, inputs.snr_coeff_fed_hz)
    V, I0 = counts_for(inputs, eta)
    T_k = per_user_delay_s(inputs, V, I0, t_s, t_c)
    return Allocation(strategy=strategy, eta=float(eta), V=float(V), I0=float(I0), T_s=float(T_k.max()),
                      b_s_hz=b_s, b_c_hz=b_c, t_s_s=t_s, t_c_s=t_c, T_k_s=T_k, solver="closed-form")
