"""The energy-aware round problem's data and its solution: what both solvers take and return.

At a fixed eta (V local iterations, I0 rounds; user k runs W_k = V·w_k iterations a round), n
problems at once: minimise the round time P (or the weighted sum with energy) under each user's
energy budget for the round, the power cap, the clock bounds and the two bandwidth pools
(optimizer/energy/__init__.py tells the whole story; interior_point.py states the problem).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from splitsim.scenarios.types import LN2

@dataclass(frozen=True)
class EnergyRoundProblem:
    """n per-round problems at once (one per eta). Per-user arrays (K,); W and budgets per problem."""

    W: np.ndarray  # (n, K) local iterations of each user per round
    sigma_s: np.ndarray  # server seconds per iteration
    tau0_s: np.ndarray  # client seconds per iteration at f_max
    tau_max_s: np.ndarray  # client seconds per iteration at f_min (inf: no floor)
    power_full_w: np.ndarray  # client compute power at f_max
    c_s_hz: np.ndarray  # SNR coefficient at p_max, link to the main server
    c_c_hz: np.ndarray  # ... to the fed server
    s_bits: float
    s_c_bits: float
    B_s_hz: float
    B_c_hz: float
    max_power_w: float
    idle_power_w: float
    budget_j: np.ndarray  # (n,) energy a user may spend per round (inf: no budget)
    weight: float = 0.0  # 0: minimise P; w in (0, 1): (1 - w)·P + w·sum_k e_k

    @property
    def shape(self) -> tuple[int, int]:
        return self.W.shape

    def columns(self, users: np.ndarray) -> EnergyRoundProblem:
        """The same problems restricted to the users `users` (indices): per-user arrays and W sliced,
        pools and budgets kept (for work on a subset of users at fixed pool prices)."""
        per_user = {name: np.broadcast_to(getattr(self, name), (self.shape[1],))[users]
                    for name in ("sigma_s", "tau0_s", "tau_max_s", "power_full_w", "c_s_hz", "c_c_hz")}
        return EnergyRoundProblem(**{**self.__dict__, **per_user, "W": self.W[:, users]})

    def rows(self, problems: np.ndarray) -> EnergyRoundProblem:
        """The problems `problems` (indices) of the batch."""
        return EnergyRoundProblem(**{**self.__dict__, "W": self.W[problems], "budget_j": self.budget_j[problems]})

    def round_energy_floor_j(self, upload_floors_j: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(n, K) infimum of a user's energy per round: slowest clock, wideband transmissions, and
        idling only while the server computes. Budgets at or below it cannot be met at any delay.
        `upload_floors_j`: the least energy of one activation and one adapter upload (K,) on a link
        other than Shannon's (optimizer.energy.on_link); Shannon's wideband limit S·ln2·p_max/c if None."""
        with np.errstate(divide="ignore"):
            cmp = np.where(np.isfinite(self.tau_max_s), self.power_full_w * self.tau0_s ** 3 / self.tau_max_s ** 2, 0.0)
        if upload_floors_j is None:
            tx_s = self.s_bits * LN2 * self.max_power_w / self.c_s_hz
            tx_c = self.s_c_bits * LN2 * self.max_power_w / self.c_c_hz
        else:
            tx_s, tx_c = upload_floors_j
        return self.W * (cmp + tx_s + self.idle_power_w * self.sigma_s) + tx_c


@dataclass
class EnergyRoundSolution:
    """Optimal per-round quantities (n, K) and P (n,); `feasible` False where no allocation exists."""

    P_s: np.ndarray
    tau_s: np.ndarray
    t_s_s: np.ndarray
    b_s_hz: np.ndarray
    t_c_s: np.ndarray
    b_c_hz: np.ndarray
    energy_j: np.ndarray  # per round
    objective: np.ndarray
    feasible: np.ndarray
    converged: np.ndarray
    newton_steps: int
    gap: np.ndarray  # final duality-gap bound relative to the objective

    def set_rows(self, rows: np.ndarray, part: EnergyRoundSolution) -> None:
        """Take the answers of the problems `rows` from `part` (a solve of `prob.rows(rows)`), in place;
        its Newton steps are added to this solution's."""
        for field in fields(self):
            if field.name not in ("feasible", "newton_steps"):
                getattr(self, field.name)[rows] = getattr(part, field.name)
        self.newton_steps += part.newton_steps
