"""Training-delay minimisation for FedsLLM (problem (17)): delay model, solvers and baselines."""

from .allocation import (
    allocation_from_bandwidth,
    allocation_with_counts,
    check_inputs,
    per_round_problem,
    verify_allocation,
)
from .baselines import equal_bandwidth_allocation
from .convex import ConvexSolver, per_round_time_s
from .delay_model import (
    compute_seconds_per_round,
    convergence_constants,
    counts_for,
    delay_inputs_from_profile,
    global_rounds,
    local_iterations,
    per_user_delay_s,
    sample_delay_inputs,
    split_samples,
    upload_seconds,
)
from .errors import OptimizerError
from .eta_search import EtaChoice, choose_eta, paper_eta_grid
from .strategies import EqualBandwidth, OptimisedBandwidth, epoch_allocation, optimise
from .structured import PerRoundProblem, PerRoundSolution, solve_per_round, solve_per_round_batch, solve_single_pool

__all__ = [
    "ConvexSolver", "EqualBandwidth", "EtaChoice", "OptimisedBandwidth", "OptimizerError", "PerRoundProblem",
    "PerRoundSolution", "allocation_from_bandwidth", "allocation_with_counts", "epoch_allocation", "check_inputs", "choose_eta", "compute_seconds_per_round",
    "convergence_constants", "counts_for", "delay_inputs_from_profile", "equal_bandwidth_allocation", "global_rounds", "local_iterations",
    "optimise", "paper_eta_grid", "per_round_problem", "per_round_time_s", "per_user_delay_s", "sample_delay_inputs",
    "solve_per_round", "solve_per_round_batch", "solve_single_pool", "split_samples", "upload_seconds", "verify_allocation",
]
