"""The energy model: one source of truth for what a user's battery pays, beside `delay_model`.

From Yang et al., "Energy efficient federated learning over wireless communication networks",
IEEE TWC 20(3), 2021, eqs. (3)-(6), whose cell and delay model FedsLLM reuses:

- computation: kappa·c·f^2 joules for c CPU cycles at f Hz (kappa, the effective switching
  capacitance: 1e-28 in FedsLLM §IV). The power at frequency f is kappa·f^3. A FLOP workload on a
  device class draws the class's power P_dev at full speed instead (`scenarios.devices`). Both
  scale the same way when the clock is lowered: running work of tau0 s at full speed in tau >= tau0
  s (f = f_max·tau0/tau) costs

      E_cmp(tau) = P_full·tau0·(tau0/tau)^2,      P_full = kappa·f_max^3  or  P_dev.

- transmission: p·t for every upload. The least power that sends S bits in t s over b Hz, with
  c = g·p_max/N0 (Hz) the SNR coefficient at full power, is

      p = p_max·(b/c)·(2^(S/(t·b)) - 1),     so     E_tx = p·t = psi(t·b),
      psi(q) = (p_max/c)·q·(2^(S/q) - 1).

  psi is convex and decreasing in the time-bandwidth product q, tends to the wideband limit
  S·ln2·p_max/c as q -> inf, and psi(t·b) is jointly convex in (t, b) (2·q·psi'' + psi' >= 0).
- idle and receive: p_idle per second a user is not busy (waiting for the server or the round
  barrier) and p_rx per second of downlink; both 0 by default (FedsLLM counts neither).

Arrays have shape (K,) unless noted; energies in J, powers in W, times in s.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios.types import LN2, EnergyInputs, clock_power_w, fdma_rate_bps


def compute_power_w(kappa_j_s2: float, cpu_hz: float | np.ndarray) -> float | np.ndarray:
    """Dynamic power of a CPU at f Hz: kappa·f^3 (so that c cycles cost kappa·c·f^2 J)."""
    return kappa_j_s2 * np.asarray(cpu_hz, dtype=float) ** 3


def compute_energy_j(power_full_w: np.ndarray, time_full_s: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Energy of work that takes `time_full_s` at full speed when run in `time_s` >= it: the power at
    the clock fraction tau0/tau times tau, = P·tau0^3/tau^2."""
    tau0 = np.asarray(time_full_s, dtype=float)
    tau = np.asarray(time_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tau0 > 0, clock_power_w(power_full_w, tau0 / tau) * tau, 0.0)


def transmit_power_fraction(bits: float, time_s: np.ndarray, bandwidth_hz: np.ndarray,
                            snr_coeff_hz: np.ndarray) -> np.ndarray:
    """p/p_max that sends `bits` in `time_s` over `bandwidth_hz`: (b/c)·(2^(S/(t·b)) - 1)."""
    b = np.asarray(bandwidth_hz, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return b / snr_coeff_hz * np.expm1(bits * LN2 / (np.asarray(time_s, dtype=float) * b))


def transmit_energy_j(bits: float, time_s: np.ndarray, bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray,
                      max_power_w: float) -> np.ndarray:
    """psi(t·b): the energy of sending `bits` in `time_s` over `bandwidth_hz` at the least power."""
    return max_power_w * np.asarray(time_s, dtype=float) * transmit_power_fraction(bits, time_s, bandwidth_hz,
                                                                                    snr_coeff_hz)


def wideband_transmit_energy_j(bits: float, snr_coeff_hz: np.ndarray, max_power_w: float) -> np.ndarray:
    """The infimum of psi (q -> inf): S·ln2·p_max/c. No finite time and bandwidth reach it."""
    return bits * LN2 * max_power_w / np.asarray(snr_coeff_hz, dtype=float)


def upload_seconds_at_power(bits: float, bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray,
                            power_fraction: np.ndarray | float = 1.0, link=None) -> np.ndarray:
    """Time to send `bits` at p = power_fraction·p_max: S / (b·log2(1 + fraction·c/b)), or S over the
    rate of `link` (a link model: scenarios.types.ShannonRate, scenarios.nr_link.NrRate)."""
    rate_bps = fdma_rate_bps if link is None else link.rate_bps
    rate = rate_bps(bandwidth_hz, np.asarray(snr_coeff_hz, dtype=float) * power_fraction)
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, bits / rate, np.inf)


def user_energy_j(energy: EnergyInputs, *, rounds: float, iterations: np.ndarray, client_full_s: np.ndarray,
                  cpu_fraction: np.ndarray, t_s_s: np.ndarray, t_c_s: np.ndarray, power_main_fraction: np.ndarray,
                  power_fed_fraction: np.ndarray, round_s: float) -> dict[str, np.ndarray]:
    """Each user's energy over a whole run, by category (K,), for the FedsLLM round structure.

    Per round user k runs `iterations[k]` local iterations, each its client compute
    (`client_full_s` at full speed, slowed to f = cpu_fraction·f_max) and one activation upload of
    `t_s_s` at power_main_fraction·p_max; then one adapter upload of `t_c_s`. It idles for the rest
    of the round (`round_s`, the slowest user's round): waiting for the server and the barrier.
    """
    client_s = client_full_s / cpu_fraction
    compute = rounds * iterations * compute_energy_j(energy.client_power_w, client_full_s, client_s)
    uplink_main = rounds * iterations * energy.max_tx_power_w * power_main_fraction * t_s_s
    uplink_fed = rounds * energy.max_tx_power_w * power_fed_fraction * t_c_s
    busy = iterations * (client_s + t_s_s) + t_c_s
    idle = rounds * energy.idle_power_w * np.maximum(round_s - busy, 0.0)
    total = compute + uplink_main + uplink_fed + idle
    return {"compute_j": compute, "uplink_main_j": uplink_main, "uplink_fed_j": uplink_fed, "idle_j": idle,
            "total_j": total}


def energy_inputs(compute, energy, radio, users: int, from_profile: bool) -> EnergyInputs:
    """The scenario's `EnergyInputs`: compute power at full speed kappa·f_max^3 (cycle workload) or
    the user device class's power (a model's FLOP workload), p_max from radio.max_tx_power_dbm.

    `compute`, `energy`, `radio`: the scenario's ComputeConfig, EnergyConfig and RadioConfig."""
    from splitsim.scenarios import DEVICES, dbm_to_watt

    if from_profile:
        power = energy.user_power_w if energy.user_power_w is not None else DEVICES[compute.user_device].power_w
    else:
        power = compute_power_w(energy.switching_capacitance_j_s2, compute.user_cpu_hz)
    return EnergyInputs(client_power_w=np.full(users, float(power)), max_tx_power_w=float(dbm_to_watt(radio.max_tx_power_dbm)),
                        min_cpu_fraction=energy.min_user_cpu_hz / compute.user_cpu_hz,
                        idle_power_w=energy.idle_power_w, receive_power_w=energy.receive_power_w)


def allocation_energy_j(inputs, energy: EnergyInputs, alloc) -> dict[str, np.ndarray]:
    """Each user's energy over the whole training under `alloc`, by category (K,) (energy_model)."""
    p_s, p_c, f = alloc.radiated_powers_and_clock(inputs)
    round_s = alloc.T_s / alloc.I0
    return user_energy_j(energy, rounds=alloc.I0, iterations=alloc.V * inputs.weights,
                         client_full_s=inputs.client_seconds_per_iteration, cpu_fraction=f, t_s_s=alloc.t_s_s,
                         t_c_s=alloc.t_c_s, power_main_fraction=p_s, power_fed_fraction=p_c, round_s=round_s)
