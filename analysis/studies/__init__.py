"""The studies `splitsim run` knows, one module each, registered in one table.

`STUDIES` (kind -> Study, analysis/studies/base.py) is what `run`, `validate`, `sweep`, the Python
API and `splitsim schema` consult: what a study needs and reads, its guards, cost, run, headline and
figure. Adding a study is one module here and one line in the table below.

Importing this package also registers `study_problems` with the scenario checks
(scenarios.schema.CROSS_SECTION_CHECKS), so that a scenario parsed or copied after it is checked
against its study as a file is.
"""

from __future__ import annotations

import difflib

from splitsim.scenarios import DYNAMIC_STRATEGIES, Problem, Scenario
from splitsim.scenarios.checks import dynamics_applied, generic_ignored_fields
from splitsim.scenarios.schema import AGGREGATION_FIELDS, CROSS_SECTION_CHECKS, StudyConfig, TrainingConfig

from . import (async_vs_sync, convergence, cut_layer, delay_energy, emulation, joint_cut, latency_vs_power, robustness,
               scheme_comparison, simulate)
from .base import SCHEMES, Study

STUDIES: dict[str, Study] = {study.kind: study for study in (
    simulate.STUDY,
    latency_vs_power.STUDY,
    scheme_comparison.STUDY,
    cut_layer.STUDY,
    joint_cut.STUDY,
    delay_energy.STUDY,
    robustness.STUDY,
    convergence.STUDY,
    emulation.STUDY,
    async_vs_sync.STUDY,
)}


def study_of(scenario: Scenario) -> Study | None:
    return STUDIES.get(scenario.study.kind)


def _tier_count(scheme: str) -> int:
    return {"fl": 1, "sfl": 2, "sl": 2, "splitllm": 3}[scheme]


def study_problems(scenario: Scenario) -> list[Problem]:
    """What the scenario's study needs and what it applies: an error each, before any work."""
    kind = scenario.study.kind
    study = STUDIES.get(kind)
    if study is None:
        close = difflib.get_close_matches(kind, list(STUDIES), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return [Problem("study.kind", f"unknown study; {hint}studies: {', '.join(STUDIES)}", kind, True)]
    problems = []
    if study.needs_model and scenario.model is None:
        problems.append(Problem("model", f"study '{kind}' needs a model section (model.source)", None, True))
    if scenario.scheme not in study.schemes:
        problems.append(Problem("scheme", study.scheme_hint or f"study '{kind}' runs for schemes "
                                f"{', '.join(study.schemes)}", scenario.scheme, True))
    dynamic = dynamics_applied(scenario)
    if dynamic and not study.simulates(scenario):
        section, name = dynamic[0].split(".")
        simulating = [k for k, s in STUDIES.items() if s.simulates(scenario)]
        problems.append(Problem(dynamic[0], f"the simulator applies a time-varying channel and users who come and go in "
                                f"the studies that simulate ({', '.join(simulating)} for scheme {scenario.scheme}); "
                                f"study '{kind}' would ignore it", getattr(getattr(scenario, section), name), True))
    dynamic_strategies = [s for s in scenario.optimizer.strategies if s in DYNAMIC_STRATEGIES]
    if dynamic_strategies and not study.dynamic_strategies(scenario):
        problems.append(Problem("optimizer.strategies", f"{' and '.join(dynamic_strategies)} plan(s) for a cell that "
                                "moves: only the studies that simulate an optimised bandwidth run them (simulate "
                                "with scheme sfl; robustness with scheme sfl or fl)", scenario.optimizer.strategies,
                                True))
    problems += _rechosen_eta_problems(scenario)
    problems += _replan_strategy_problems(scenario)
    m = scenario.model
    if m is not None:
        schemes = study.schemes_run(scenario)
        if "edge" in m.gradient_checkpointing and "splitllm" not in schemes:
            problems.append(Problem("model.gradient_checkpointing", f"only SplitLLM has an edge tier (scheme: "
                                    f"{', '.join(schemes)})", m.gradient_checkpointing, True))
        if m.cut_dtype != "auto" and all(_tier_count(s) == 1 for s in schemes):
            problems.append(Problem("model.cut_dtype", "FL cuts nothing: no tensor crosses a cut", m.cut_dtype, True))
    return problems + study.problems(scenario)


def _replan_strategy_problems(scenario: Scenario) -> list[Problem]:
    """A strategy of the user's re-plans SFL's bandwidths at the first plan's eta: not FL's adapter
    uplink (its own min-max planner), not with eta re-chosen (that is problem (17)'s search)."""
    opt = scenario.optimizer
    if opt.replan_strategy == "proposed" or "proposed_replan" not in opt.strategies:
        return []
    if scenario.scheme != "sfl":
        return [Problem("optimizer.replan_strategy", f"a strategy of your own re-plans SFL's bandwidths; scheme "
                        f"'{scenario.scheme}' re-plans with its own planner", opt.replan_strategy, True)]
    etas = scenario.study.replan_etas if scenario.study.kind == "robustness" else None
    if opt.replan_eta == "rechosen" or (etas is not None and "rechosen" in etas):
        return [Problem("optimizer.replan_strategy", "re-choosing eta is problem (17)'s search; a strategy of your own "
                        "re-plans at the first plan's eta: set replan_eta: fixed", opt.replan_strategy, True)]
    return []


def _rechosen_eta_problems(scenario: Scenario) -> list[Problem]:
    """optimizer.replan_eta: rechosen changes the rounds and local iterations mid-run: SFL's delay-only
    re-planner, on a channel drawn as it happens (per-round tables hold the planned rounds only)."""
    opt, ch, sim = scenario.optimizer, scenario.channel, scenario.simulation
    etas = scenario.study.replan_etas if scenario.study.kind == "robustness" else None
    if etas is not None and "rechosen" in etas:
        field, value = "study.replan_etas", etas
    elif opt.replan_eta == "rechosen":
        field, value = "optimizer.replan_eta", opt.replan_eta
    else:
        return []
    if "proposed_replan" not in opt.strategies or scenario.scheme != "sfl":
        return []
    if opt.energy_budget_j is not None or opt.energy_weight is not None:
        return [Problem(field, "the energy-aware plan keeps its eta, powers and clocks when it re-plans (re-choosing "
                        "eta under an energy budget is not built); set replan_eta: fixed", value, True)]
    if ch.redraw_each_round or not ch.time_varying:
        return [Problem(field, "re-choosing eta changes the number of rounds, so it needs a channel drawn as it "
                        "happens (channel.coherence_time_s), not a frozen or per-round table", value, True)]
    if sim.straggler_probability > 0:
        return [Problem(field, "stragglers are drawn for the planned rounds; re-choosing eta changes their number "
                        "(not built together)", value, True)]
    return []


CROSS_SECTION_CHECKS.append(study_problems)


def ignored_fields(scenario: Scenario) -> dict[str, str]:
    """Field paths (or section prefixes) that `splitsim run` of this scenario does not read -> why:
    those no study reads here (scenarios.checks.generic_ignored_fields), then what the study's
    declaration says it does not read, then what it sets itself (its `ignores`)."""
    study = study_of(scenario)
    ignored = generic_ignored_fields(scenario)
    if study is None:
        return ignored
    kind, scheme = study.kind, scenario.scheme
    if study.trains:
        ignored.pop("training", None)
        ignored.pop("convergence", None)
    ignored.pop(kind, None)  # a study's own section (emulation)
    ignored.update({f"study.{name}": f"study '{kind}' does not read it"
                    for name in set(StudyConfig.model_fields) - {"kind"} - study.reads})
    if not study.solves_problem_17(scenario):
        what = f"study '{kind}' of scheme '{scheme}' runs simulation.rounds epochs"
        ignored["theory"] = f"{what}; FedsLLM's convergence constants are not used"
        ignored["optimizer"] = f"{what}; problem (17) is not solved"
    elif not study.energy_aware(scenario):
        why = f"study '{kind}' of scheme '{scheme}' solves the delay-only problem (17)"
        ignored["optimizer.energy_budget_j"] = why
        ignored["optimizer.energy_weight"] = why
    if scenario.radio.subcarrier_spacing_khz is not None and not study.whole_prbs(scenario) and \
            scenario.radio.link_model == "shannon":  # the NR link is always in whole PRBs
        for name in ("subcarrier_spacing_khz", "prb_rule"):
            ignored[f"radio.{name}"] = (f"study '{kind}' of scheme '{scheme}' uses continuous bandwidths (whole PRBs "
                                        "apply to SFL's simulate, robustness and optimize)")
    schemes = study.schemes_run(scenario)
    if "splitllm" not in schemes:
        why = f"only SplitLLM has edge servers and a backhaul (scheme{'s' if len(schemes) > 1 else ''} here: " \
              f"{', '.join(schemes)})"
        for path in EDGE_FIELDS:
            ignored[path] = why
    if not scenario.simulation.downlink:
        for path in ("radio.downlink_bandwidth_hz", "radio.bs_tx_power_dbm"):
            ignored[path] = "simulation.downlink is false: no downlink is simulated (the paper's assumption)"
    if scenario.model is not None and scenario.scheme == "sfl" and study.solves_problem_17(scenario):
        why = ("with a model, one of FedsLLM's local iterations is one mini-batch step and a round V of them, "
               "whatever the data size (scheme_comparison's epoch-based SFL reads it)")
        ignored["workload.dataset_samples"] = why
        ignored["workload.data_split"] = why
    if kind == "simulate" and scheme in ("fl", "sfl") and "training" in ignored:  # FL's and SFL's aggregation
        why = ignored.pop("training")
        ignored.update({f"training.{name}": why for name in TrainingConfig.model_fields
                        if name not in AGGREGATION_FIELDS})
        if scenario.training.aggregation == "sync":
            for name in ("buffer_size", "concurrency"):
                ignored[f"training.{name}"] = "training.aggregation is sync: every user's update is awaited"
    ignored.update(_dynamic_strategy_fields(scenario))
    ignored.update(study.ignores(scenario))
    return ignored



REPLAN_FIELDS = ("optimizer.replan_interval_s", "optimizer.replan_csi", "optimizer.replan_eta",
                 "optimizer.replan_strategy",
                 "optimizer.replan_users", "optimizer.replan_shadowing", "optimizer.replan_prediction",
                 "optimizer.replan_solve_s",
                 "optimizer.replan_signalling_s", "channel.csi_delay_s", "channel.csi_error_db",
                 "study.replan_intervals_s", "study.csi_delays_s", "study.replan_etas")


def _dynamic_strategy_fields(scenario: Scenario) -> dict[str, str]:
    """The re-planning and robust-plan fields that do nothing here (path -> why)."""
    strategies = scenario.optimizer.strategies
    ignored = {}
    if "proposed_replan" not in strategies:
        ignored.update({path: "only strategy proposed_replan reads it (optimizer.strategies)" for path in REPLAN_FIELDS})
    elif not scenario.channel.time_varying and not scenario.channel.redraw_each_round \
            and scenario.channel.csi_error_db == 0:
        ignored["optimizer.strategies"] = ("proposed_replan re-plans when the channel changes, and this channel is "
                                           "static (no channel.coherence_time_s or redraw_each_round): it is proposed")
    if "robust" not in strategies:
        ignored["optimizer.robust_walks"] = "only strategy robust reads it (optimizer.strategies)"
    ch = scenario.channel
    if scenario.optimizer.replan_csi == "full":
        ignored.setdefault("optimizer.replan_shadowing", "with replan_csi: full the planner knows the channel of the "
                                                         "moment; the shadowing's forecast is for large-scale CSI")
    elif not ch.time_varying or ch.mobility_speed_mps == 0 or ch.shadowing_sigma_db == 0:
        ignored.setdefault("optimizer.replan_shadowing", "the shadowing does not move here (no walking users with "
                                                         "shadowing on a time-varying channel): nothing to forecast")
    return ignored


# What only SplitLLM's edge tier reads (edge_tx_power_dbm also prices the edges' interference, so
# it stays with SplitLLM; the cloud serves FL's aggregation too).
EDGE_FIELDS = ("cell.edge_servers", "cell.edge_placement", "radio.edge_spectrum", "radio.edge_tx_power_dbm",
               "radio.backhaul_rate_bps", "radio.backhaul_latency_s", "compute.edge_device", "compute.edge_flops_per_s",
               "simulation.edge_concurrency")


def ignored_reason(scenario: Scenario, path: str) -> str | None:
    """Why `path` (dotted) does nothing in this scenario's study, or None when it is read."""
    for prefix, why in ignored_fields(scenario).items():
        if path == prefix or path.startswith(prefix + "."):
            return why
    return None


def scenario_json_schema() -> dict:
    """The JSON Schema of scenario files, `study.kind` enumerating the registered studies."""
    schema = Scenario.model_json_schema()
    kind = schema["$defs"]["StudyConfig"]["properties"]["kind"]
    kind.pop("maxLength", None)
    kind.pop("minLength", None)
    kind["enum"] = list(STUDIES)
    kind["description"] = ("The study `splitsim run` makes: " + "; ".join(f"{k}: {s.title}" for k, s in STUDIES.items())
                           + ".")
    return schema


__all__ = ["SCHEMES", "STUDIES", "Study", "ignored_fields", "ignored_reason", "scenario_json_schema", "study_of",
           "study_problems"]
