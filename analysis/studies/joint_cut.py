"""Study `joint_cut`: the joint choice of cut layer, bandwidth and eta for SFL — the cut whose
proposed allocation is fastest among those that fit the user's memory (the choice the SplitLLM
paper leaves for future work), then simulated. It shares the per-cut tables of `cut_layer`."""

from __future__ import annotations

from .base import Study
from .cut_layer import HEADLINE, JOINT_HEADLINE, cut_problems, run_cut_study

STUDY = Study(
    kind="joint_cut", title="the joint optimum of cut layer, bandwidth and eta (SFL), simulated",
    run=run_cut_study, figure="joint_cut.png", headline_meaning=HEADLINE + JOINT_HEADLINE,
    reads=frozenset({"cuts", "user_memory_limit_gib"}), needs_model=True, schemes=("sfl",),
    scheme_hint="the joint cut / bandwidth / eta choice is made for SFL (FedsLLM): set scheme: sfl",
    simulates=lambda s: True, solves_problem_17=lambda s: True, problems=cut_problems,
)
