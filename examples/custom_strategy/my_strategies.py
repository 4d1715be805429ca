"""Two allocation strategies of a user's own, for `optimizer.strategies` (see scenario.yaml here).

Run from this folder (so that `my_strategies` is importable):

    splitsim simulate scenario.yaml --out out

`proportional_fair` splits each uplink pool in proportion to each user's spectral efficiency on
an equal share (log2(1 + SNR)): the classic proportional-fair split of an FDMA band, which favours
users with a good channel — the opposite of problem (17)'s optimum, which gives the weak users more
so that everyone finishes together. `EqualTimeGreedy` is a class (instantiated once, then called):
it moves bandwidth from the fastest user to the slowest in small steps while that lowers the slowest
user's delay, at the eta it picks from the paper's grid.
"""

from __future__ import annotations

import numpy as np

from splitsim.optimizer.custom import StrategyDecision, StrategyProblem


def proportional_fair(problem: StrategyProblem) -> StrategyDecision:
    efficiency = np.log2(1 + problem.snr_main)
    share = efficiency / efficiency.sum()
    return StrategyDecision(eta=problem.fixed_eta,
                            uplink_main_bandwidth_hz=share * problem.uplink_main_bandwidth_hz,
                            uplink_fed_bandwidth_hz=share * problem.uplink_fed_bandwidth_hz)


class EqualTimeGreedy:
    """Greedy water-filling on the slowest user, at the best eta of a coarse grid."""

    steps = 200

    def __call__(self, problem: StrategyProblem) -> StrategyDecision:
        best = None
        for eta in problem.eta_grid[4::10]:  # 0.05, 0.15, ..., 0.95
            b_s, b_c, delay = self._balance(problem, float(eta))
            if best is None or delay < best[3]:
                best = (float(eta), b_s, b_c, delay)
        eta, b_s, b_c, _ = best
        return StrategyDecision(eta=eta, uplink_main_bandwidth_hz=b_s, uplink_fed_bandwidth_hz=b_c)

    def _balance(self, problem: StrategyProblem, eta: float) -> tuple[np.ndarray, np.ndarray, float]:
        k = problem.users
        b_s = np.full(k, problem.uplink_main_bandwidth_hz / k)
        b_c = np.full(k, problem.uplink_fed_bandwidth_hz / k)
        delay = problem.user_delay_s(eta, b_s, b_c)
        for _ in range(self.steps):
            slow, fast = int(np.argmax(delay)), int(np.argmin(delay))
            move_s, move_c = 0.05 * b_s[fast], 0.05 * b_c[fast]
            trial_s, trial_c = b_s.copy(), b_c.copy()
            trial_s[[fast, slow]] += (-move_s, move_s)
            trial_c[[fast, slow]] += (-move_c, move_c)
            trial = problem.user_delay_s(eta, trial_s, trial_c)
            if trial.max() >= delay.max():
                break
            b_s, b_c, delay = trial_s, trial_c, trial
        return b_s, b_c, float(delay.max())
