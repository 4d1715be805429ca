"""Your own allocation strategy, beside proposed, EB, FE and BA.

A strategy is a callable (or a class whose instances are) that receives a `StrategyProblem` — what
problem (17)'s solvers receive: each user's channel coefficients, demands and compute, the two
uplink pools, the eta settings — and returns a `StrategyDecision` (or a dict with its fields):

    import numpy as np
    from splitsim.optimizer.custom import StrategyDecision, StrategyProblem

    def proportional_fair(problem: StrategyProblem) -> StrategyDecision:
        share = np.log2(1 + problem.snr_main) / np.log2(1 + problem.snr_main).sum()
        return StrategyDecision(eta=problem.fixed_eta,
                                uplink_main_bandwidth_hz=share * problem.uplink_main_bandwidth_hz,
                                uplink_fed_bandwidth_hz=share * problem.uplink_fed_bandwidth_hz)

Name it in a scenario (`optimizer.strategies: [proposed, EB, "mypkg.alloc:proportional_fair"]`;
scenarios.custom_strategies says how names are found). Its decision is checked as the built-ins'
answers are — bandwidths positive, finite and within their pools, eta in (0, 1), power and clock
fractions in (0, 1] — and a bad one is one line naming the strategy (exit 2). splitsim then derives
the allocation exactly as for a built-in (V and I0 from eta, upload times from the Shannon rates at
the given powers, each user's delay from the delay model; whole PRBs under
radio.subcarrier_spacing_khz), verifies it against problem (17)'s constraints
(optimizer.allocation.verify_allocation), and simulates it in either engine like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs, OptimizerConfig
from splitsim.scenarios.custom_strategies import resolve_strategy

from .allocation import allocation_with_counts
from .delay_model import counts_for
from .errors import OptimizerError
from .eta_search import paper_eta_grid


@dataclass(frozen=True)
class StrategyProblem:
    """Problem (17) as a strategy sees it. Per-user arrays have shape (K,).

    The delay of user k at eta: I0(eta) · (V(eta) · w_k · (compute_k + s / r_s,k) + s_c / r_c,k), with
    r = b log2(1 + c / b) the Shannon rate of b Hz at the SNR coefficient c (Hz) — `user_delay_s`
    evaluates it for a candidate."""

    inputs: DelayInputs  # everything, as the built-in solvers get it (scenarios.types.DelayInputs)
    fixed_eta: float  # optimizer.fixed_eta (FE's and BA's eta)
    eta_grid: np.ndarray  # the paper's eta grid (optimizer.eta_grid_step)

    @property
    def users(self) -> int:
        return self.inputs.users

    @property
    def uplink_main_bandwidth_hz(self) -> float:
        """B_s: the pool of the activation uplink (to the main server), Hz."""
        return self.inputs.uplink_main_bandwidth_hz

    @property
    def uplink_fed_bandwidth_hz(self) -> float:
        """B_c: the pool of the adapter uplink (to the fed server), Hz."""
        return self.inputs.uplink_fed_bandwidth_hz

    @property
    def snr_coeff_main_hz(self) -> np.ndarray:
        """c_k = g_k p_k / N0 (Hz) towards the main server: b Hz give the SNR c_k / b."""
        return self.inputs.snr_coeff_main_hz

    @property
    def snr_coeff_fed_hz(self) -> np.ndarray:
        return self.inputs.snr_coeff_fed_hz

    @property
    def snr_main(self) -> np.ndarray:
        """Each user's SNR (linear) on an equal share B_s / K of the main uplink."""
        return self.inputs.snr_coeff_main_hz / (self.uplink_main_bandwidth_hz / self.users)

    @property
    def compute_seconds_per_iteration(self) -> np.ndarray:
        """Client plus server compute of one local iteration (s)."""
        return self.inputs.compute_seconds_per_iteration

    def counts(self, eta: float) -> tuple[float, float]:
        """(V local iterations per round, I0 global rounds) at `eta`, as the built-ins count them."""
        return counts_for(self.inputs, eta)

    def user_delay_s(self, eta: float, uplink_main_bandwidth_hz: np.ndarray,
                     uplink_fed_bandwidth_hz: np.ndarray) -> np.ndarray:
        """Each user's training delay T_k (s) for a candidate (the delay model, at full power)."""
        return allocation_with_counts(self.inputs, *self.counts(eta), uplink_main_bandwidth_hz,
                                      uplink_fed_bandwidth_hz, "candidate", "", eta=eta).T_k_s


@dataclass(frozen=True)
class StrategyDecision:
    """A strategy's answer: eta and each user's bandwidths (Hz, shape (K,)); optionally each user's
    transmit power and CPU clock as fractions of their maxima (None: at the maximum)."""

    eta: float
    uplink_main_bandwidth_hz: np.ndarray
    uplink_fed_bandwidth_hz: np.ndarray
    power_main_fraction: np.ndarray | None = None
    power_fed_fraction: np.ndarray | None = None
    cpu_fraction: np.ndarray | None = None


def strategy_problem(inputs: DelayInputs, config: OptimizerConfig) -> StrategyProblem:
    return StrategyProblem(inputs, float(config.fixed_eta), paper_eta_grid(config.eta_grid_step))


def _fail(name: str, message: str) -> OptimizerError:
    return OptimizerError(f"strategy '{name}' {message}", field="optimizer.strategies", value=name)


def _decision(name: str, answer) -> StrategyDecision:
    if isinstance(answer, StrategyDecision):
        return answer
    if isinstance(answer, dict):
        fields = set(StrategyDecision.__dataclass_fields__)
        unknown = sorted(set(answer) - fields)
        if unknown:
            raise _fail(name, f"returned unknown key(s) {unknown}; expected {sorted(fields)}")
        try:
            return StrategyDecision(**answer)
        except TypeError as err:
            raise _fail(name, f"returned an incomplete answer: {err}") from None
    raise _fail(name, f"returned a {type(answer).__name__}; expected a StrategyDecision or a dict with eta, "
                      "uplink_main_bandwidth_hz and uplink_fed_bandwidth_hz")


def _per_user(name: str, field: str, value, users: int, upper: float | None = None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise _fail(name, f"returned {field} that is not an array of numbers") from None
    if array.shape != (users,):
        raise _fail(name, f"returned {field} of shape {array.shape}; expected ({users},), one per user")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        worst = int(np.flatnonzero(~np.isfinite(array) | (array <= 0))[0])
        raise _fail(name, f"returned {field}[{worst}] = {float(array[worst])!r}; every user's must be finite and > 0")
    if upper is not None and np.any(array > upper):
        worst = int(np.argmax(array))
        raise _fail(name, f"returned {field}[{worst}] = {array[worst]:.6g}; a fraction of the maximum must be <= 1")
    return array


def checked_decision(name: str, answer, problem: StrategyProblem) -> StrategyDecision:
    """The strategy's answer, checked: one line naming the strategy and what is wrong, otherwise."""
    decision = _decision(name, answer)
    k = problem.users
    try:
        eta = float(decision.eta)
    except (TypeError, ValueError):
        raise _fail(name, f"returned eta = {decision.eta!r}; expected a number in (0, 1)") from None
    if not 0 < eta < 1:
        raise _fail(name, f"returned eta = {eta!r}; expected a number in (0, 1)")
    b_s = _per_user(name, "uplink_main_bandwidth_hz", decision.uplink_main_bandwidth_hz, k)
    b_c = _per_user(name, "uplink_fed_bandwidth_hz", decision.uplink_fed_bandwidth_hz, k)
    for field, used, pool in (("uplink_main_bandwidth_hz", b_s.sum(), problem.uplink_main_bandwidth_hz),
                              ("uplink_fed_bandwidth_hz", b_c.sum(), problem.uplink_fed_bandwidth_hz)):
        if used > pool * (1 + 1e-9):
            raise _fail(name, f"returned {field} summing to {used:.9g} Hz, more than the pool's {pool:.9g} Hz")
    fractions = {f: None if getattr(decision, f) is None else _per_user(name, f, getattr(decision, f), k, upper=1.0)
                 for f in ("power_main_fraction", "power_fed_fraction", "cpu_fraction")}
    return StrategyDecision(eta, b_s, b_c, **fractions)


def custom_allocation(name: str, inputs: DelayInputs, config: OptimizerConfig,
                      strategy: Callable | None = None) -> Allocation:
    """The allocation a user's strategy decides (not yet verified against (17): the caller does, as
    for every strategy)."""
    problem = strategy_problem(inputs, config)
    if strategy is None:
        try:
            strategy = resolve_strategy(name)
        except ValueError as err:
            raise OptimizerError(str(err), field="optimizer.strategies", value=name) from None
    try:
        answer = strategy(problem)
    except OptimizerError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code: one line, never a traceback
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise _fail(name, f"raised {message}") from None
    decision = checked_decision(name, answer, problem)
    V, I0 = problem.counts(decision.eta)
    return allocation_with_counts(inputs, V, I0, decision.uplink_main_bandwidth_hz, decision.uplink_fed_bandwidth_hz,
                                  name, "custom", {"custom_strategy": name}, eta=decision.eta,
                                  power_main_fraction=decision.power_main_fraction,
                                  power_fed_fraction=decision.power_fed_fraction, cpu_fraction=decision.cpu_fraction)
