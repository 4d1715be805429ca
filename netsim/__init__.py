"""The wireless cell and the SimPy discrete-event engine that runs the training protocols."""

from .channel import (
    downlink_snr_coeff_hz,
    fdma_rate_bps,
    path_loss_db,
    round_gain_factors,
    sample_channel,
    sample_edge_positions,
    sample_user_positions,
    snr_coeff_hz,
)
from .engine import ACTIVITIES, CATEGORIES, Barrier, ComputeNode, EventLog, Link, gc_paused, work_fractions
from .protocols import FlPlan, SflPlan, SlPlan, SplitLlmPlan
from .schemes import (build_fl_plan, build_sl_plan, build_splitllm_plan, cross_link_gains, downlink_interference_w,
                      edge_interference_w, edge_link_state, edge_spectrum, run_plan)
from .errors import NetsimError
from .simulate import SimulationResult, build_sfl_plan, simulate_sfl
from .topology import CLOUD, FED_SERVER, MAIN_SERVER, associate_users, build_topology

__all__ = [
    "ACTIVITIES", "CATEGORIES", "CLOUD", "FED_SERVER", "MAIN_SERVER", "Barrier", "ComputeNode", "EventLog", "Link",
    "FlPlan", "NetsimError", "SflPlan", "SimulationResult", "SlPlan", "SplitLlmPlan", "build_fl_plan", "build_sl_plan",
    "build_splitllm_plan", "cross_link_gains", "downlink_interference_w", "edge_interference_w", "edge_link_state",
    "edge_spectrum", "gc_paused", "run_plan", "associate_users", "build_sfl_plan", "build_topology",
    "downlink_snr_coeff_hz", "fdma_rate_bps", "path_loss_db", "round_gain_factors", "sample_channel",
    "sample_edge_positions", "sample_user_positions", "simulate_sfl", "snr_coeff_hz", "work_fractions",
]
