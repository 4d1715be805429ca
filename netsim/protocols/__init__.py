"""Training protocols as SimPy generator processes, one short function per role."""

from .fl import FlPlan, run_fl
from .sfl import SflPlan, run_sfl
from .sl import SlPlan, run_sl
from .splitllm import SplitLlmPlan, run_splitllm

__all__ = ["FlPlan", "SflPlan", "SlPlan", "SplitLlmPlan", "run_fl", "run_sfl", "run_sl", "run_splitllm"]
