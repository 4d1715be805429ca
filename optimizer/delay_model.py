"""The FedsLLM delay model (§III): the one source of truth for V(eta), I0(eta), tau_k and T_k.

    V(eta)  = v·log2(1/eta),            v = 2 / ((2 - L·delta)·delta·gamma)       (Lemma 2)
    I0(eta) = a / (1 - eta),            a = 2·L^2 / (gamma^2·xi) · ln(1/epsilon0) (Lemma 1)
    tau_k   = V · (client + server seconds per local iteration)
            = E_k·log2(1/eta)·(A/f_k + (1-A)/f_s),  E_k = v·C_k·D_k              (eq. (10))
    T_k     = I0 · (tau_k + t_c,k + V·t_s,k),   T = max_k T_k                     (eq. (15))

With `counts: integer`, V and I0 are rounded up (Lemmas 1-2 give lower bounds on counts).
"""

from __future__ import annotations

import math

import numpy as np

from splitsim.scenarios import (
    ChannelState,
    ComputeConfig,
    DelayInputs,
    ModelConfig,
    RadioConfig,
    TheoryConfig,
    WorkloadConfig,
    WorkloadProfile,
)
from splitsim.scenarios.types import fdma_rate_bps

from .errors import OptimizerError


def convergence_constants(theory: TheoryConfig) -> tuple[float, float]:
    """(a, v): of Lemmas 1-2 from L, gamma, xi, delta and epsilon0 (`theory.source: bound`), or
    fitted to real training's rounds-to-target, R(V) = a / (1 - 2^(-V/v)) (`measured`: read from
    `theory.convergence_path`, scenarios/convergence_file.py)."""
    if theory.source == "measured":
        from splitsim.scenarios.convergence_file import measured_constants

        return measured_constants(theory.convergence_path)
    L, gamma = theory.lipschitz_L, theory.strong_convexity_gamma
    a = 2.0 * L**2 / (gamma**2 * theory.xi) * math.log(1.0 / theory.epsilon0)
    v = 2.0 / ((2.0 - L * theory.delta) * theory.delta * gamma)
    return a, v


def _check_eta(eta: float | np.ndarray) -> None:
    if isinstance(eta, float) and 0.0 < eta < 1.0:
        return
    e = np.asarray(eta, dtype=float)
    if not np.all(np.isfinite(e)) or np.any(e <= 0) or np.any(e >= 1):
        raise OptimizerError("eta must lie in (0, 1)", field="eta", value=float(e.flat[0]) if e.size == 1 else eta)


def local_iterations(eta: float | np.ndarray, v: float, counts: str = "continuous") -> float | np.ndarray:
    """V(eta) = v·log2(1/eta): local iterations per round (rounded up when counts is 'integer')."""
    _check_eta(eta)
    V = v * np.log2(1.0 / np.asarray(eta, dtype=float))
    if counts == "integer":
        V = np.ceil(V - 1e-9)
    return float(V) if np.ndim(V) == 0 else V


def global_rounds(eta: float | np.ndarray, a: float, counts: str = "continuous") -> float | np.ndarray:
    """I0(eta) = a / (1 - eta): global rounds (rounded up when counts is 'integer')."""
    _check_eta(eta)
    I0 = a / (1.0 - np.asarray(eta, dtype=float))
    if counts == "integer":
        I0 = np.ceil(I0 - 1e-9)
    return float(I0) if np.ndim(I0) == 0 else I0


def counts_for(inputs: DelayInputs, eta: float) -> tuple[float, float]:
    """(V, I0) at eta for these inputs."""
    return local_iterations(eta, inputs.v, inputs.counts), global_rounds(eta, inputs.a, inputs.counts)


def compute_seconds_per_round(inputs: DelayInputs, V: float, cpu_fraction: np.ndarray | None = None) -> np.ndarray:
    """tau_k = V·w_k · (client + server seconds per local iteration), shape (K,).

    The weights w_k are 1 in the paper's model; epoch-based runs set them to each user's batches.
    `cpu_fraction` f_k/f_max (None: 1) slows the client's compute (the energy-aware allocation)."""
    if cpu_fraction is None:
        return V * inputs.weights * inputs.compute_seconds_per_iteration
    client = inputs.client_seconds_per_iteration / cpu_fraction
    return V * inputs.weights * (client + inputs.server_seconds_per_iteration)


def upload_seconds(bits: float, bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray) -> np.ndarray:
    """Time to send `bits` on an FDMA sub-band: bits / (b·log2(1 + c/b)); inf for b = 0."""
    rate = fdma_rate_bps(bandwidth_hz, snr_coeff_hz)
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, bits / rate, np.inf)


def per_user_delay_s(inputs: DelayInputs, V: float, I0: float, t_s_s: np.ndarray, t_c_s: np.ndarray,
                     cpu_fraction: np.ndarray | None = None) -> np.ndarray:
    """T_k = I0 · (tau_k + t_c,k + V·w_k·t_s,k), shape (K,)."""
    return I0 * (compute_seconds_per_round(inputs, V, cpu_fraction) + t_c_s + V * inputs.weights * t_s_s)


def split_samples(total: int, users: int, how: str, rng: np.random.Generator) -> np.ndarray:
    """D_k: 'even' (remainder to the first users) or 'multinomial' (each sample picks a user)."""
    if how == "even":
        base = np.full(users, total // users, dtype=np.int64)
        base[: total % users] += 1
        return base
    return rng.multinomial(total, np.full(users, 1.0 / users)).astype(np.int64)


def samples_per_user(workload: WorkloadConfig, users: int, seed: int) -> np.ndarray:
    """D_k of every user, shape (K,): the split the simulator and every table use (stream 'compute',
    whose first draw it is)."""
    from splitsim.scenarios import rng_for

    return split_samples(workload.dataset_samples, users, workload.data_split, rng_for(seed, "compute"))


def batches_per_user(samples: np.ndarray, batch_size: int) -> np.ndarray:
    """Full mini-batches each user trains per local epoch, floor(D_k / batch), shape (K,): the one
    definition of a round's work for the simulator and the profile tables."""
    return np.asarray(samples, dtype=np.int64) // int(batch_size)


def sample_delay_inputs(theory: TheoryConfig, compute: ComputeConfig, workload: WorkloadConfig, radio: RadioConfig,
                        channel: ChannelState, rng: np.random.Generator) -> DelayInputs:
    """Per-user compute demand of the paper's cycle model, joined to the channel draw.

    D_k from the data split; C_k ~ U[cycles_per_sample_range]; per local iteration the client runs
    A·C_k·D_k cycles at f_k and the main server (1-A)·C_k·D_k cycles at f_s.
    """
    a, v = convergence_constants(theory)
    k = channel.users
    samples = split_samples(workload.dataset_samples, k, workload.data_split, rng)
    low, high = compute.cycles_per_sample_range
    cycles = rng.uniform(low, high, size=k) * samples
    share = compute.client_fraction
    c = channel.snr_coeff_hz
    return DelayInputs(
        a=a, v=v, counts=theory.counts,
        uplink_main_bandwidth_hz=radio.uplink_main_bandwidth_hz, uplink_fed_bandwidth_hz=radio.uplink_fed_bandwidth_hz,
        activation_bits=workload.activation_bits, adapter_bits=workload.adapter_bits,
        gradient_bits=workload.gradient_bits_or_default,
        snr_coeff_main_hz=c, snr_coeff_fed_hz=c.copy(),
        client_seconds_per_iteration=share * cycles / compute.user_cpu_hz,
        server_seconds_per_iteration=(1.0 - share) * cycles / compute.server_cpu_hz,
        samples=samples, **_link_rates(radio, channel),
    )


def _link_rates(radio: RadioConfig, channel: ChannelState) -> dict:
    """The link models of the scenario's radio for this channel's users (Shannon's, or the NR link:
    scenarios.nr_link)."""
    from splitsim.scenarios.nr_link import link_rates

    uplink, downlink = link_rates(radio, channel)
    return {"uplink_rate": uplink, "downlink_rate": downlink}


def delay_inputs_from_profile(theory: TheoryConfig, compute: ComputeConfig, workload: WorkloadConfig,
                              radio: RadioConfig, model: ModelConfig, profile: WorkloadProfile,
                              channel: ChannelState, rng: np.random.Generator) -> DelayInputs:
    """The SFL delay inputs when a real model is named: one local iteration is one mini-batch step.

    s = the activations and side tensors at the cut, the gradient bits are the activations' gradient,
    s_c = the user tier's trainable parameters; compute = each tier's FLOPs (forward + backward, per
    batch) over the sustained FLOP/s of the user and main-server device classes.
    """
    a, v = convergence_constants(theory)
    k = channel.users
    cut = model.cut_layers[0]
    user, server = profile.tiers([cut])
    boundary = profile.boundary(cut)
    user_s = user.flops / compute.flops_per_s("user", profile.dtype)
    server_s = server.flops / compute.flops_per_s("server", profile.dtype)
    c = channel.snr_coeff_hz
    return DelayInputs(
        a=a, v=v, counts=theory.counts,
        uplink_main_bandwidth_hz=radio.uplink_main_bandwidth_hz, uplink_fed_bandwidth_hz=radio.uplink_fed_bandwidth_hz,
        activation_bits=8.0 * (boundary.forward_bytes + boundary.side_bytes),
        adapter_bits=8.0 * max(user.adapter_bytes, 1), gradient_bits=8.0 * max(boundary.backward_bytes, 1),
        snr_coeff_main_hz=c, snr_coeff_fed_hz=c.copy(),
        client_seconds_per_iteration=np.full(k, user_s), server_seconds_per_iteration=np.full(k, server_s),
        samples=split_samples(workload.dataset_samples, k, workload.data_split, rng),
        client_forward_share=user.forward_flops / user.flops if user.flops > 0 else 0.5, **_link_rates(radio, channel),
    )
