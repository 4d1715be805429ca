"""Training protocols as SimPy generator processes, one short function per role."""

from .sfl import SflPlan, run_sfl

__all__ = ["SflPlan", "run_sfl"]
