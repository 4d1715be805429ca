"""One vocabulary for results: the names of the metrics every study and `simulate` write.

`summary.json` of every run has `metrics` (name -> number), `headline` (the names a sweep tabulates
and plots) and `headline_meaning` (one line: what the headline delays are in this study). The names:

- `delay_<who>_s`: the training delay in seconds of an allocation strategy (`proposed`, `EB`, `FE`,
  `BA`) or a scheme (`splitllm`, `sfl`, `fl`, `sl`), or of a named choice (`joint`). It is the
  study's headline: simulated in `simulate`, `scheme_comparison` and `robustness` (the mean over
  seeds), the optimizer's T averaged over the swept powers in `latency_vs_power`, at each
  strategy's best feasible cut in `cut_layer`, at the budget's end in `delay_energy`.
- `planned_delay_<who>_s`: the optimizer's prediction beside a simulated delay; `p95_delay_<who>_s`
  the 95th percentile over seeds.
- `reduction_vs_<baseline>_pct`: 100 (T_baseline - T_proposed) / T_baseline.
- `worst_user_<who>_j`, `least_energy_needed_j`: energies in joules; `best_cut`, `joint_cut`, `joint_eta`:
  choices.

So `delay_proposed_s` names the proposed allocation's delay in every study that has one.
"""

from __future__ import annotations


def delay_metric(who: str) -> str:
    """The headline delay of strategy or scheme `who` (seconds)."""
    return f"delay_{who}_s"


def planned_delay_metric(who: str) -> str:
    return f"planned_delay_{who}_s"


def p95_delay_metric(who: str) -> str:
    return f"p95_delay_{who}_s"


def reduction_metric(baseline: str) -> str:
    """100 (T_baseline - T_proposed) / T_baseline, in percent."""
    return f"reduction_vs_{baseline}_pct"


def headline_delays(metrics: dict) -> list[str]:
    """The headline metrics among `metrics`: every `delay_<who>_s`, in order."""
    return [name for name in metrics if name.startswith("delay_") and name.endswith("_s")]
