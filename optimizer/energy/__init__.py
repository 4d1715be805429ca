"""Training delay under per-user energy budgets: FedsLLM's problem with power and clock as decisions.

The story, one file a part:
- model.py: what a battery pays: compute kappa·c·f^2 (or a device's power × busy time), p·t per
  upload at the least power that meets the rate (p·t = psi(t·b), convex), idle and receive power.
- problem.py: the per-round problem at a fixed eta (n of them batched) and its solution type.
- interior_point.py: a log-barrier interior-point method, O(K) per Newton step (up to 200 users).
- structured.py (+ structured_user.py, structured_settle.py): the exact structured Newton method on
  the optimality conditions, per-user closed forms and three globals, with a duality-gap certificate
  (beyond 200 users; each solver retries what the other leaves).
- strategies.py: the energy-aware proposed allocation: the interval of eta where the budget can be
  met, the eta search inside it, verification; the least energy each user needs (check_budget).
- reference.py: independent formulations (SLSQP, IPOPT through CasADi) the tests hold both against.

strategies.py sits above optimizer.strategies and optimizer.allocation, so it is imported by its
path (optimizer.energy.strategies), not from here.
"""

from .interior_point import solve_energy_rounds
from .model import transmit_energy_j, upload_seconds_at_power, user_energy_j, wideband_transmit_energy_j
from .problem import EnergyRoundProblem, EnergyRoundSolution
from .structured import round_time_floor_s, solve_energy_kkt

__all__ = ["EnergyRoundProblem", "EnergyRoundSolution", "round_time_floor_s", "solve_energy_kkt", "solve_energy_rounds",
           "transmit_energy_j", "upload_seconds_at_power", "user_energy_j", "wideband_transmit_energy_j"]
