"""Plain, torch-free data types exchanged between packages, and the FDMA rate they share.

`netsim` draws a `ChannelState`; `optimizer` turns it and the per-user compute demand
(`DelayInputs`) into `Allocation`s; `netsim` simulates an `Allocation`; `learning` produces a
`WorkloadProfile` (see `scenarios.profile_types`). None of these types imports torch, simpy or cvxpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

LN2 = math.log(2.0)


def dbm_to_watt(power_dbm: float | np.ndarray) -> float | np.ndarray:
    """Power in dBm -> watts."""
    return 10.0 ** ((np.asarray(power_dbm, dtype=float) - 30.0) / 10.0)


def fdma_rate_bps(bandwidth_hz: float | np.ndarray, snr_coeff_hz: float | np.ndarray) -> np.ndarray:
    """Shannon rate of an FDMA sub-band: r = b·log2(1 + c/b) bit/s, with c = g·p/N0 in Hz.

    b = 0 gives 0; b = inf gives the wideband limit c/ln 2. Shapes broadcast.
    """
    b = np.asarray(bandwidth_hz, dtype=float)
    c = np.asarray(snr_coeff_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = b * np.log1p(c / b) / LN2
    rate = np.where(b <= 0, 0.0, rate)
    return np.where(np.isinf(b), c / LN2, rate)


class ShannonRate:
    """The FedsLLM paper's link: `fdma_rate_bps`, a band sent all the time at Shannon capacity.

    A link model is any object with `name` and `rate_bps(bandwidth_hz, snr_coeff_hz)` (shapes
    broadcast, bit/s); the NR link (scenarios.nr_link.NrRate) is the other one."""

    name = "shannon"

    def rate_bps(self, bandwidth_hz: float | np.ndarray, snr_coeff_hz: float | np.ndarray) -> np.ndarray:
        return fdma_rate_bps(bandwidth_hz, snr_coeff_hz)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShannonRate)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return "ShannonRate()"


SHANNON = ShannonRate()


def clock_power_w(power_full_w: float | np.ndarray, cpu_fraction: float | np.ndarray) -> np.ndarray:
    """Dynamic power of a processor clocked at cpu_fraction·f_max: P_full·fraction^3 (power ~ f·V^2 with
    V ~ f; so a fixed amount of work, taking 1/fraction as long, costs fraction^2 of its energy:
    kappa·c·f^2, Yang et al., IEEE TWC 2021, eq. (4)). The one formula the optimizer's energy model and
    the simulator's energy accounts share."""
    return np.asarray(power_full_w, dtype=float) * np.asarray(cpu_fraction, dtype=float) ** 3


def _array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=float)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


@dataclass(frozen=True)
class ChannelState:
    """One channel realisation of the cell, drawn once and read by the optimizer and the simulator.

    Arrays have shape (K,) unless noted; distances in m, losses in dB (a loss is positive).
    """

    positions_m: np.ndarray  # (K, 2) user positions, cell centre at the origin
    bs_position_m: np.ndarray  # (2,) base-station position
    distance_m: np.ndarray  # user-to-base-station distance, clamped to the minimum distance
    path_loss_db: np.ndarray
    shadowing_db: np.ndarray  # shadowing loss, N(0, sigma^2) in dB
    fading_power: np.ndarray  # |h|^2 of small-scale fading (ones without fading)
    tx_power_dbm: float
    noise_psd_dbm_per_hz: float

    @property
    def users(self) -> int:
        return int(self.distance_m.shape[0])

    @property
    def gain_db(self) -> np.ndarray:
        """Channel power gain g in dB (negative): -(path loss + shadowing) + fading."""
        return -(self.path_loss_db + self.shadowing_db) + 10.0 * np.log10(self.fading_power)

    @property
    def gain_linear(self) -> np.ndarray:
        return 10.0 ** (self.gain_db / 10.0)

    @property
    def snr_coeff_hz(self) -> np.ndarray:
        """c = g·p/N0 in Hz: the SNR over 1 Hz; the rate limit as b -> inf is c/ln 2."""
        return 10.0 ** ((self.gain_db + self.tx_power_dbm - self.noise_psd_dbm_per_hz) / 10.0)

    def rate_bps(self, bandwidth_hz: float | np.ndarray) -> np.ndarray:
        return fdma_rate_bps(bandwidth_hz, self.snr_coeff_hz)

    def with_tx_power(self, tx_power_dbm: float) -> ChannelState:
        """The same draw (positions, shadowing, fading) at another transmit power."""
        return replace(self, tx_power_dbm=float(tx_power_dbm))

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> ChannelState:
        arrays = {"positions_m", "bs_position_m", "distance_m", "path_loss_db", "shadowing_db", "fading_power"}
        return cls(**{k: (_array(v) if k in arrays else float(v)) for k, v in data.items()})


@dataclass(frozen=True)
class DelayInputs:
    """Everything the FedsLLM delay model needs. Per-user arrays have shape (K,).

    One local iteration: client compute, activation upload (s bits), server compute; one round:
    V local iterations, then the client adapter (s_c bits) to the fed server.
    """

    a: float  # I0 = a / (1 - eta)
    v: float  # V = v * log2(1 / eta)
    counts: str  # "continuous" or "integer" (rounded up)
    uplink_main_bandwidth_hz: float  # B_s
    uplink_fed_bandwidth_hz: float  # B_c
    activation_bits: float  # s, per local iteration
    adapter_bits: float  # s_c, per round
    gradient_bits: float  # per local iteration, downlink
    snr_coeff_main_hz: np.ndarray  # c = g·p/N0 on the link to the main server
    snr_coeff_fed_hz: np.ndarray  # c on the link to the fed server
    client_seconds_per_iteration: np.ndarray  # compute on the user device per local iteration
    server_seconds_per_iteration: np.ndarray  # compute on the main server per local iteration
    samples: np.ndarray  # D_k
    client_forward_share: float = 1.0 / 3.0  # share of client compute before the upload (forward)
    iteration_weights: np.ndarray | None = None  # (K,) user k runs V·w_k local iterations (None: all 1)
    uplink_rate: Any = SHANNON  # the link model of both uplinks: rate_bps(bandwidth_hz, snr_coeff_hz)
    downlink_rate: Any = SHANNON  # the link model of the downlink

    @property
    def users(self) -> int:
        return int(self.snr_coeff_main_hz.shape[0])

    @property
    def link_model(self) -> str:
        return self.uplink_rate.name

    def shannon_surrogate(self, alpha: float, gamma: float) -> DelayInputs:
        """Inputs on which problem (17)'s Shannon solvers stand in for a link whose rate is fitted as
        alpha·b·log2(1 + c/(gamma·b)) (the link's `shannon_fit`): c/gamma and bits/alpha on Shannon's
        rate (optimizer.link_plan)."""
        return replace(self, snr_coeff_main_hz=self.snr_coeff_main_hz / gamma,
                       snr_coeff_fed_hz=self.snr_coeff_fed_hz / gamma, activation_bits=self.activation_bits / alpha,
                       adapter_bits=self.adapter_bits / alpha, uplink_rate=SHANNON, downlink_rate=SHANNON)

    @property
    def weights(self) -> np.ndarray:
        return np.ones(self.users) if self.iteration_weights is None else self.iteration_weights

    @property
    def compute_seconds_per_iteration(self) -> np.ndarray:
        return self.client_seconds_per_iteration + self.server_seconds_per_iteration

    @property
    def tau_coeff_s(self) -> np.ndarray:
        """tau_k / log2(1/eta) = v · (client + server seconds per iteration) = E_k (A/f_k + (1-A)/f_s)."""
        return self.v * self.weights * self.compute_seconds_per_iteration

    def of_users(self, users: np.ndarray) -> DelayInputs:
        """These inputs for the users `users` (indices) alone: the per-user arrays sliced, the bands whole."""
        pick = lambda a: None if a is None else np.asarray(a)[users]  # noqa: E731
        return replace(self, snr_coeff_main_hz=pick(self.snr_coeff_main_hz), snr_coeff_fed_hz=pick(self.snr_coeff_fed_hz),
                       client_seconds_per_iteration=pick(self.client_seconds_per_iteration),
                       server_seconds_per_iteration=pick(self.server_seconds_per_iteration),
                       samples=pick(self.samples), iteration_weights=pick(self.iteration_weights))

    def with_snr(self, snr_coeff_main_hz: np.ndarray, snr_coeff_fed_hz: np.ndarray | None = None) -> DelayInputs:
        fed = snr_coeff_main_hz if snr_coeff_fed_hz is None else snr_coeff_fed_hz
        return replace(self, snr_coeff_main_hz=_array(snr_coeff_main_hz), snr_coeff_fed_hz=_array(fed))

    def to_dict(self) -> dict:
        """The `inputs` block of allocation.json: enough to re-solve problem (17) independently."""
        return {
            "a": self.a, "v": self.v, "counts": self.counts,
            "B_s_hz": self.uplink_main_bandwidth_hz, "B_c_hz": self.uplink_fed_bandwidth_hz,
            "s_bits": self.activation_bits, "s_c_bits": self.adapter_bits, "gradient_bits": self.gradient_bits,
            "client_forward_share": self.client_forward_share, "link_model": self.link_model,
            "users": [
                {"c_hz": float(cs), "c_fed_hz": float(cc), "tau_coeff_s": float(tau),
                 "client_s_per_iter": float(cl), "server_s_per_iter": float(sv), "samples": int(d),
                 "iteration_weight": float(w)}
                for cs, cc, tau, cl, sv, d, w in zip(self.snr_coeff_main_hz, self.snr_coeff_fed_hz, self.tau_coeff_s,
                                                     self.client_seconds_per_iteration,
                                                     self.server_seconds_per_iteration, self.samples, self.weights)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> DelayInputs:
        users = data["users"]
        c = _array([u["c_hz"] for u in users])
        return cls(
            a=float(data["a"]), v=float(data["v"]), counts=str(data.get("counts", "continuous")),
            uplink_main_bandwidth_hz=float(data["B_s_hz"]), uplink_fed_bandwidth_hz=float(data["B_c_hz"]),
            activation_bits=float(data["s_bits"]), adapter_bits=float(data["s_c_bits"]),
            gradient_bits=float(data.get("gradient_bits", data["s_bits"])),
            snr_coeff_main_hz=c, snr_coeff_fed_hz=_array([u.get("c_fed_hz", u["c_hz"]) for u in users]),
            client_seconds_per_iteration=_array([u["client_s_per_iter"] for u in users]),
            server_seconds_per_iteration=_array([u["server_s_per_iter"] for u in users]),
            samples=np.asarray([u.get("samples", 0) for u in users], dtype=np.int64),
            client_forward_share=float(data.get("client_forward_share", 1.0 / 3.0)),
            iteration_weights=_array([u.get("iteration_weight", 1.0) for u in users]),
        )


@dataclass(frozen=True)
class EnergyInputs:
    """What the energy model (optimizer.energy.model) needs beside the `DelayInputs`.

    `client_power_w` (K,) is each user's compute power at full speed: kappa·f_max^3 for CPU-cycle
    workloads, the user device class's power for FLOP workloads."""

    client_power_w: np.ndarray
    max_tx_power_w: float  # p_max: the SNR coefficients of the DelayInputs are at this power
    min_cpu_fraction: float = 0.0  # f_min / f_max (0: the clock may go down to 0, FedsLLM (16f))
    idle_power_w: float = 0.0
    receive_power_w: float = 0.0

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> EnergyInputs:
        return cls(client_power_w=_array(data["client_power_w"]), max_tx_power_w=float(data["max_tx_power_w"]),
                   min_cpu_fraction=float(data.get("min_cpu_fraction", 0.0)),
                   idle_power_w=float(data.get("idle_power_w", 0.0)),
                   receive_power_w=float(data.get("receive_power_w", 0.0)))


@dataclass(frozen=True)
class Allocation:
    """One strategy's answer to problem (17): eta, counts and per-user bandwidths and times (K,)."""

    strategy: str
    eta: float
    V: float  # local iterations per round, as simulated (continuous or integer)
    I0: float  # global rounds
    T_s: float  # total training delay max_k T_k (s)
    b_s_hz: np.ndarray  # bandwidth to the main server
    b_c_hz: np.ndarray  # bandwidth to the fed server
    t_s_s: np.ndarray  # activation upload time per local iteration
    t_c_s: np.ndarray  # adapter upload time per round
    T_k_s: np.ndarray  # per-user total delay I0·(tau_k + t_c + V·t_s)
    solver: str = ""
    details: dict = field(default_factory=dict)  # solver diagnostics, eta-search results, ...
    # Set by the energy-aware solver; None = at the maximum (the delay-only problem (17)).
    power_main_fraction: np.ndarray | None = None  # p_s,k / p_max
    power_fed_fraction: np.ndarray | None = None  # p_c,k / p_max
    cpu_fraction: np.ndarray | None = None  # f_k / f_max

    def powers_and_clock(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_s/p_max, p_c/p_max, f/f_max) per user, ones where the allocation leaves them at the maximum."""
        ones = np.ones(self.users)
        return tuple(ones if a is None else a for a in (self.power_main_fraction, self.power_fed_fraction,
                                                         self.cpu_fraction))

    def radiated_powers_and_clock(self, inputs: DelayInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_s/p_max, p_c/p_max, f/f_max) (K,) a user radiates and clocks at: powers_and_clock, the
        power ones times the share its link's power control grants on its band
        (scenarios.nr_link.NrRate.tx_power_fraction; 1 on Shannon's link and at maximum power)."""
        p_s, p_c, f = self.powers_and_clock()
        rate = inputs.uplink_rate
        if getattr(rate, "power_control", None) is None:
            return p_s, p_c, f
        return (p_s * rate.tx_power_fraction(self.b_s_hz, inputs.snr_coeff_main_hz * p_s),
                p_c * rate.tx_power_fraction(self.b_c_hz, inputs.snr_coeff_fed_hz * p_c), f)

    @property
    def users(self) -> int:
        return int(self.b_s_hz.shape[0])

    def of_users(self, users: np.ndarray) -> Allocation:
        """This allocation's eta, counts, powers and clocks for the users `users` (indices) alone."""
        pick = lambda a: None if a is None else np.asarray(a)[users]  # noqa: E731
        return replace(self, b_s_hz=pick(self.b_s_hz), b_c_hz=pick(self.b_c_hz), t_s_s=pick(self.t_s_s),
                       t_c_s=pick(self.t_c_s), T_k_s=pick(self.T_k_s), details=dict(self.details),
                       power_main_fraction=pick(self.power_main_fraction),
                       power_fed_fraction=pick(self.power_fed_fraction), cpu_fraction=pick(self.cpu_fraction))

    def to_dict(self) -> dict:
        out = {"T_s": self.T_s, "eta": self.eta, "I0": self.I0, "V": self.V, "solver": self.solver,
               "details": {k: _jsonable(v) for k, v in self.details.items()}}
        out["users"] = [
            {"b_s_hz": float(bs), "b_c_hz": float(bc), "t_s_s": float(ts), "t_c_s": float(tc), "T_k_s": float(tk)}
            for bs, bc, ts, tc, tk in zip(self.b_s_hz, self.b_c_hz, self.t_s_s, self.t_c_s, self.T_k_s)
        ]
        for name in ("power_main_fraction", "power_fed_fraction", "cpu_fraction"):
            arr = getattr(self, name)
            if arr is not None:
                for user, value in zip(out["users"], arr):
                    user[name] = float(value)
        return out

    @classmethod
    def from_dict(cls, strategy: str, data: dict) -> Allocation:
        users = data["users"]
        col = lambda key: _array([u[key] for u in users])  # noqa: E731
        return cls(strategy=strategy, eta=float(data["eta"]), V=float(data["V"]), I0=float(data["I0"]),
                   T_s=float(data["T_s"]), b_s_hz=col("b_s_hz"), b_c_hz=col("b_c_hz"), t_s_s=col("t_s_s"),
                   t_c_s=col("t_c_s"), T_k_s=col("T_k_s"), solver=str(data.get("solver", "")),
                   details=dict(data.get("details", {})),
                   **{name: col(name) for name in ("power_main_fraction", "power_fed_fraction", "cpu_fraction")
                      if users and name in users[0]})


__all__ = ["LN2", "SHANNON", "ShannonRate", "ChannelState", "DelayInputs", "EnergyInputs", "Allocation", "clock_power_w", "fdma_rate_bps",
           "dbm_to_watt"]
