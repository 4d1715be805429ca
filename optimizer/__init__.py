"""Training-delay minimisation for FedsLLM (problem (17)): delay model, solvers and baselines."""

from .baselines import equal_bandwidth_allocation
from .delay_model import (
    compute_seconds_per_round,
    convergence_constants,
    counts_for,
    global_rounds,
    local_iterations,
    per_user_delay_s,
    sample_delay_inputs,
    split_samples,
    upload_seconds,
)
from .errors import OptimizerError

__all__ = [
    "OptimizerError", "compute_seconds_per_round", "convergence_constants", "counts_for",
    "equal_bandwidth_allocation", "global_rounds", "local_iterations", "per_user_delay_s", "sample_delay_inputs",
    "split_samples", "upload_seconds",
]
