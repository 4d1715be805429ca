"""From bandwidths to a verified `Allocation`, with the delay model as the only arithmetic."""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs

from .delay_model import counts_for, per_user_delay_s
from .energy.model import upload_seconds_at_power
from .errors import OptimizerError
from .structured import PerRoundProblem


def check_inputs(inputs: DelayInputs) -> None:
    """Raise `OptimizerError` (field, value) for inputs no allocation can be computed for."""
    scalars = {"B_s_hz": inputs.uplink_main_bandwidth_hz, "B_c_hz": inputs.uplink_fed_bandwidth_hz,
               "s_bits": inputs.activation_bits, "s_c_bits": inputs.adapter_bits, "a": inputs.a, "v": inputs.v}
    for name, value in scalars.items():
        if not np.isfinite(value) or value <= 0:
            raise OptimizerError("must be finite and > 0", field=f"inputs.{name}", value=value)
    if inputs.users < 1:
        raise OptimizerError("needs at least one user", field="inputs.users", value=inputs.users)
    per_user = {"c_hz": inputs.snr_coeff_main_hz, "c_fed_hz": inputs.snr_coeff_fed_hz}
    for name, arr in per_user.items():
        bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
        if bad.size:
            k = int(bad[0])
            raise OptimizerError("channel coefficient g·p/N0 must be finite and > 0: no allocation can serve "
                                 "this user", field=f"inputs.users[{k}].{name}", value=float(arr[k]))
    for name, arr in {"client_s_per_iter": inputs.client_seconds_per_iteration,
                      "server_s_per_iter": inputs.server_seconds_per_iteration}.items():
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            k = int(bad[0])
            raise OptimizerError("compute time must be finite and >= 0", field=f"inputs.users[{k}].{name}",
                                 value=float(arr[k]))


def per_round_problem(inputs: DelayInputs, V: float) -> PerRoundProblem:
    """Problem (17) at the eta that gives V local iterations, in per-round form.

    A user with no local iteration (weight 0: no batch to train) uploads no activations; it is
    given a vanishing weight so that the solvers hand it a vanishing share of B_s (its true delay,
    from the delay model with weight 0, does not depend on that share)."""
    w = inputs.iteration_weights
    if w is not None and np.any(w <= 0):
        if not np.any(w > 0):
            raise OptimizerError("no user has a local iteration to run", field="inputs.iteration_weights", value=0)
        w = np.where(w > 0, w, 1e-6 * w.max())
    return PerRoundProblem(V=float(V), compute_s=inputs.compute_seconds_per_iteration,
                           c_s_hz=inputs.snr_coeff_main_hz, c_c_hz=inputs.snr_coeff_fed_hz,
                           s_bits=inputs.activation_bits, s_c_bits=inputs.adapter_bits,
                           B_s_hz=inputs.uplink_main_bandwidth_hz, B_c_hz=inputs.uplink_fed_bandwidth_hz,
                           weights=w)


def allocation_from_bandwidth(inputs: DelayInputs, eta: float, b_s_hz: np.ndarray, b_c_hz: np.ndarray,
                              strategy: str, solver: str, details: dict | None = None) -> Allocation:
    """The allocation these bandwidths give at `eta`: budgets enforced by scaling down, upload times
    from the Shannon rates (the rate constraints hold with equality), T_k from the delay model."""
    V, I0 = counts_for(inputs, eta)
    return allocation_with_counts(inputs, V, I0, b_s_hz, b_c_hz, strategy, solver, details, eta)


def allocation_with_counts(inputs: DelayInputs, V: float, I0: float, b_s_hz: np.ndarray, b_c_hz: np.ndarray,
                           strategy: str, solver: str, details: dict | None = None,
                           eta: float = float("nan"), power_main_fraction: np.ndarray | None = None,
                           power_fed_fraction: np.ndarray | None = None,
                           cpu_fraction: np.ndarray | None = None) -> Allocation:
    """As `allocation_from_bandwidth`, with the counts given (epoch-based runs: V = 1 local epoch of
    `iteration_weights` batches, I0 = the rounds; eta is then NaN: not from the FedsLLM theory).

    The power and clock fractions (None: 1) are those of an energy-aware allocation: the upload
    times follow from the rates at those powers and the client's compute from its clock."""
    b_s = np.asarray(b_s_hz, dtype=float)
    b_c = np.asarray(b_c_hz, dtype=float)
    b_s = b_s * min(1.0, inputs.uplink_main_bandwidth_hz / float(b_s.sum()))
    b_c = b_c * min(1.0, inputs.uplink_fed_bandwidth_hz / float(b_c.sum()))
    p_s = 1.0 if power_main_fraction is None else power_main_fraction
    p_c = 1.0 if power_fed_fraction is None else power_fed_fraction
    t_s = upload_seconds_at_power(inputs.activation_bits, b_s, inputs.snr_coeff_main_hz, p_s, inputs.uplink_rate)
    t_c = upload_seconds_at_power(inputs.adapter_bits, b_c, inputs.snr_coeff_fed_hz, p_c, inputs.uplink_rate)
    T_k = per_user_delay_s(inputs, V, I0, t_s, t_c, cpu_fraction)
    return Allocation(strategy=strategy, eta=float(eta), V=float(V), I0=float(I0), T_s=float(np.max(T_k)),
                      b_s_hz=b_s, b_c_hz=b_c, t_s_s=t_s, t_c_s=t_c, T_k_s=T_k, solver=solver,
                      details=dict(details or {}), power_main_fraction=power_main_fraction,
                      power_fed_fraction=power_fed_fraction, cpu_fraction=cpu_fraction)


def verify_allocation(inputs: DelayInputs, alloc: Allocation, rel_tol: float = 1e-6) -> list[str]:
    """Check an allocation against the unscaled constraints of problem (17); return the violations."""
    problems = []
    arrays = {"b_s_hz": alloc.b_s_hz, "b_c_hz": alloc.b_c_hz, "t_s_s": alloc.t_s_s, "t_c_s": alloc.t_c_s,
              "T_k_s": alloc.T_k_s}
    for name, arr in arrays.items():
        if arr.shape != (inputs.users,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            problems.append(f"{name} must be finite and > 0 for all {inputs.users} users")
    if problems:
        return problems
    p_s, p_c, f = alloc.powers_and_clock()
    for name, arr in (("power_main_fraction", p_s), ("power_fed_fraction", p_c), ("cpu_fraction", f)):
        if arr.shape != (inputs.users,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0) \
                or np.any(arr > 1 + rel_tol):
            problems.append(f"{name} must lie in (0, 1] for all {inputs.users} users")
    if problems:
        return problems
    if alloc.b_s_hz.sum() > inputs.uplink_main_bandwidth_hz * (1 + rel_tol):
        problems.append(f"sum b_s = {alloc.b_s_hz.sum():.9g} Hz exceeds B_s = {inputs.uplink_main_bandwidth_hz:.9g}")
    if alloc.b_c_hz.sum() > inputs.uplink_fed_bandwidth_hz * (1 + rel_tol):
        problems.append(f"sum b_c = {alloc.b_c_hz.sum():.9g} Hz exceeds B_c = {inputs.uplink_fed_bandwidth_hz:.9g}")
    need_s = upload_seconds_at_power(inputs.activation_bits, alloc.b_s_hz, inputs.snr_coeff_main_hz, p_s,
                                     inputs.uplink_rate)
    need_c = upload_seconds_at_power(inputs.adapter_bits, alloc.b_c_hz, inputs.snr_coeff_fed_hz, p_c,
                                     inputs.uplink_rate)
    if np.any(alloc.t_s_s < need_s * (1 - rel_tol)):
        problems.append("some t_s is shorter than s / r(b_s): the rate constraint (17b) is violated")
    if np.any(alloc.t_c_s < need_c * (1 - rel_tol)):
        problems.append("some t_c is shorter than s_c / r(b_c): the rate constraint (17c) is violated")
    if np.isfinite(alloc.eta):
        V, I0 = counts_for(inputs, alloc.eta)
        if abs(V - alloc.V) > rel_tol * V or abs(I0 - alloc.I0) > rel_tol * I0:
            problems.append(f"V, I0 = {alloc.V}, {alloc.I0} do not match eta = {alloc.eta}")
    else:
        V, I0 = alloc.V, alloc.I0
    T_k = per_user_delay_s(inputs, V, I0, alloc.t_s_s, alloc.t_c_s, alloc.cpu_fraction)
    if np.any(np.abs(T_k - alloc.T_k_s) > rel_tol * T_k):
        problems.append("T_k does not match the delay model")
    if abs(alloc.T_s - T_k.max()) > rel_tol * T_k.max():
        problems.append(f"T = {alloc.T_s} is not max_k T_k = {T_k.max()}")
    return problems
