"""Study `convergence` (also `splitsim convergence`): the number of rounds measured, not bounded.

Real training of the scenario's SFL over a grid of local iterations V (`convergence.local_steps`,
each user's mini-batch steps per round) and seeds, every run until `convergence.metric` reaches
`convergence.target` or `max_rounds` passes (then it is censored, never dropped). The rounds-to-target
are fitted by FedsLLM's form R(V) = a / (1 - 2^(-V/v)) and two alternatives (optimizer/convergence_fit.py);
each strategy's choice of V and its predicted wall-clock to the target follow on the bound and on the
measured curve side by side; and the proposed allocation's prediction is checked by runs at its chosen V
with seeds that were not part of the fit. `theory.source: measured` in any SFL study then reads the
fitted (a, v) from the convergence.json written here.

Each run checkpoints every round in the cache (SPLITSIM_CACHE_DIR, default ~/.cache/splitsim/convergence),
keyed by everything its rounds depend on: an interrupted study resumes, and a rerun into another folder
reuses every run whose inputs are identical.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.scenarios import InputError, Problem, Scenario

from .. import plots
from ..metrics import delay_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import ProgressLog
from ..report import Report
from .base import Study

HEADLINE = ("each strategy's predicted wall-clock to the convergence target: rounds from the curve fitted to the "
            "measured rounds-to-target x the optimised round time")
STUDY_SCHEMES = ("sfl",)
CHECK_ROUNDS_FACTOR = 2.0
"""The check's runs may train up to this many times the rounds the curve predicts (at least max_rounds)."""
STEPS_LIMIT = 20_000_000
"""Refuse a grid whose training could take more mini-batch steps than this (users x V x max_rounds x runs)."""


def reached(value: float, metric: str, target: float) -> bool:
    return value >= target if metric == "eval_accuracy" else value <= target


def rounds_to_target(rows: list[dict], metric: str, target: float, window: int = 1) -> int | None:
    """Rounds trained when `metric`, averaged over the `window` (odd) evaluations centred on a round,
    first reached `target` (1 = after the first round; the window is cut short at round 0); None if
    never, or not yet knowable: a round is judged only once the (window - 1) / 2 rounds after it are
    trained. With window 1, the first single evaluation at the target."""
    half = (window - 1) // 2
    values = np.array([row[metric] for row in rows], dtype=float)
    for r in range(len(values) - half):
        if reached(float(values[max(0, r - half):r + half + 1].mean()), metric, target):
            return r + 1
    return None


def censored_after(rows_trained: int, window: int) -> int:
    """A run that trained this many rounds without reaching the target is known to need more than this
    many: the last (window - 1) / 2 rounds could not be judged."""
    return rows_trained - (window - 1) // 2


def enough(rows: list[dict], c) -> bool:
    """Whether a run has trained far enough: its crossing is known and `rounds_past_target` follow it."""
    hit = rounds_to_target(rows, c.metric, c.target, c.smoothing_rounds)
    return hit is not None and len(rows) >= hit + max((c.smoothing_rounds - 1) // 2, c.rounds_past_target)


def run_scenario(scenario: Scenario, local_steps: int, seed: int) -> Scenario:
    """The scenario one run trains: V local steps a round, up to max_rounds, and its own seed (the
    partition, the shuffles, the dropout and the adapters' initialisation)."""
    c = scenario.convergence
    training = scenario.training.model_copy(update={"local_steps": local_steps, "rounds": c.max_rounds,
                                                    "schemes": [scenario.scheme], "partitions": [c.partition]})
    return scenario.model_copy(update={"seed": seed, "training": training,
                                       "model": scenario.model.model_copy(update={"seed": seed})})


def cache_dir() -> Path:
    from splitsim.learning.profile import cache_dir as profiles

    return profiles().parent / "convergence"


def _train_runs(scenario: Scenario, plan: list[tuple[int, int]], data, world, progress: bool | None) -> list[dict]:
    """Train (or resume, or reuse from the cache) every (V, seed) of `plan`; one dict per run."""
    from splitsim.learning.data import partition as split_users

    from ..train_run import _fingerprint, train_one

    c = scenario.convergence
    train_data, eval_data = data
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    rounds_total = len(plan) * c.max_rounds
    log = ProgressLog(rounds_total, "convergence", "rounds (at most)")
    runs = []
    for V, seed in plan:
        one = run_scenario(scenario, V, seed)
        parts = split_users(train_data.labels.numpy(), one.cell.users, c.partition, one.training.dirichlet_alpha, seed)
        checkpoint = folder / f"{_fingerprint(one, one.scheme, c.partition)}.pt"
        rows, _ = train_one(one, one.scheme, c.partition, parts, world.association, train_data, eval_data, checkpoint,
                            lambda trained: log.step() if trained is not None else log.skip(),
                            until=lambda rows: enough(rows, c))
        hit = rounds_to_target(rows, c.metric, c.target, c.smoothing_rounds)
        if len(rows) < c.max_rounds:
            log.skip(c.max_rounds - len(rows))
        best = (max if c.metric == "eval_accuracy" else min)(r[c.metric] for r in rows)
        runs.append({"local_steps": V, "seed": seed, "rounds_to_target": hit, "censored": hit is None,
                     "first_single_crossing": rounds_to_target(rows, c.metric, c.target),
                     "censored_after": None if hit is not None else censored_after(len(rows), c.smoothing_rounds),
                     "best": float(best), "rounds_trained": len(rows), "train_wall_s": float(sum(r["wall_s"] for r in rows)),
                     "curve": [{k: r[k] for k in ("round", "train_loss", "eval_loss", "eval_accuracy", "eval_f1")}
                               for r in rows]})
    return runs


def strategy_table(world, scenario: Scenario, constants: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Per (source, strategy): the chosen eta and V, the rounds and the delay to the target."""
    from splitsim.optimizer import optimise

    rows = []
    for source, (a, v) in constants.items():
        for name, alloc in optimise(replace(world.inputs, a=a, v=v), scenario.optimizer).items():
            rows.append({"source": source, "strategy": name, "eta": alloc.eta, "V": alloc.V, "rounds": alloc.I0,
                         "round_s": alloc.T_s / alloc.I0, "T_s": alloc.T_s})
    return pd.DataFrame(rows)


def measured_intervals(strategies: pd.DataFrame, runs: list[dict]) -> pd.DataFrame:
    """The strategy table with the measured rows' delays' 90 % prediction intervals (T_low_90_s,
    T_high_90_s: one new seed's rounds at each V, analysis.intervals) — NaN on the bound's rows, and
    no columns where the runs give no interval (fewer than 3 reached the target)."""
    from splitsim.optimizer.convergence_fit import fit_seeds

    from ..intervals import with_delay_interval

    try:
        fit = fit_seeds(runs)
    except ValueError:
        return strategies
    measured = strategies["source"] == "measured"
    banded = with_delay_interval(strategies[measured], None, rounds_column="rounds", fit=fit)
    return banded.combine_first(strategies)[banded.columns]


V_SEARCH_FACTOR = 2.0
"""The V searched on a chosen form's curve: from 1 to this many times the grid's largest."""


def chosen_form_rows(world, scenario: Scenario, runs: list[dict], fits: dict, v: float) -> list[dict]:
    """The proposed allocation on the form the held-out error chose (optimizer.convergence_fit.fit_all),
    told its spread: V chosen (continuous, 1 ... V_SEARCH_FACTOR x the grid's largest) to minimise its
    rounds x the optimised round time at V, and, risk-averse, to minimise the high end of the 90 %
    interval of one new seed's delay (the form fitted to every run, `fit_seeds`). [] when too few runs
    reached the target for the seed fit."""
    from scipy.optimize import minimize_scalar

    from splitsim.optimizer.convergence_fit import fit_seeds

    form = fits["better"]
    try:
        fit = fit_seeds(runs, form)
    except ValueError:
        return []
    top = V_SEARCH_FACTOR * max(scenario.convergence.local_steps)
    round_s = {}

    def delay(V: float, end: str) -> float:
        if V not in round_s:
            round_s[V] = round_seconds_at(world, scenario, V, v)
        return float(fit.interval(V)[end]) * round_s[V]

    rows = []
    for end, label in (("rounds", ""), ("high", ", 90 % high end")):
        best = minimize_scalar(lambda V, e=end: delay(float(V), e), bounds=(1.0, top), method="bounded",
                               options={"xatol": 1e-3})
        V = float(best.x)
        band = fit.interval(V)
        rows.append({"source": f"measured, {form} form{label}", "strategy": "proposed", "eta": float("nan"),
                     "V": V, "rounds": float(band["rounds"]), "round_s": round_s[V],
                     "T_s": float(band["rounds"]) * round_s[V], "T_low_90_s": float(band["low"]) * round_s[V],
                     "T_high_90_s": float(band["high"]) * round_s[V]})
    return rows


def round_seconds_at(world, scenario: Scenario, local_steps: float, v: float) -> float:
    """The optimised round time (bandwidth chosen) at V local steps: FE's allocation at eta = 2^(-V/v)."""
    from splitsim.optimizer import optimise

    eta = 2.0 ** (-local_steps / v)
    at_v = scenario.optimizer.model_copy(update={"strategies": ["FE"], "fixed_eta": eta})
    alloc = optimise(replace(world.inputs, v=v, counts="continuous"), at_v)["FE"]
    return alloc.T_s / alloc.I0


def run(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    from splitsim.optimizer import convergence_constants
    from splitsim.optimizer.convergence_fit import fedsllm_rounds, fit_all, leave_one_out, rounds_points
    from splitsim.scenarios.convergence_file import CONVERGENCE_FORMAT, scenario_identity

    from ..train_run import _base_config, _check, _load_task
    from ..world import realise

    training_scenario = run_scenario(scenario, scenario.convergence.local_steps[0], scenario.convergence.seeds[0])
    _check(training_scenario)
    c = scenario.convergence
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    vocab = getattr(_base_config(scenario), "vocab_size", None)
    data = (_load_task(training_scenario, "train", vocab, world.profile.architecture),
            _load_task(training_scenario, "eval", vocab, world.profile.architecture))
    grid = sorted(set(c.local_steps))
    runs = _train_runs(scenario, [(V, s) for V in grid for s in c.seeds], data, world, progress)
    identity = {**scenario_identity(scenario), "dataset": scenario.training.dataset, "metric": c.metric,
                "target": c.target, "max_rounds": c.max_rounds}
    document = {"format": CONVERGENCE_FORMAT, "identity": identity, "scenario": scenario.name,
                "settings": {"local_steps": grid, "seeds": c.seeds, "lr": scenario.training.lr,
                             "optimizer": scenario.model.optimizer, "lr_decay": scenario.training.lr_decay,
                             "eval_split": scenario.training.eval_split, "smoothing_rounds": c.smoothing_rounds,
                             "rounds_past_target": c.rounds_past_target},
                "runs": runs}
    curves = pd.DataFrame([{"local_steps": r["local_steps"], "seed": r["seed"], **row} for r in runs
                           for row in r["curve"]])
    curves.to_csv(out / "convergence.csv", index=False)
    points, never = rounds_points(runs, c.max_rounds)
    document["rounds_to_target"] = [vars(p) | {"lower_bound": p.lower_bound} for p in points]
    document["never_reached"] = never
    if len(points) < 3:
        write_json(out / "convergence.json", document)
        best = max(runs, key=lambda r: r["best"] if c.metric == "eval_accuracy" else -r["best"])
        raise InputError(f"only {len(points)} value(s) of V reached {c.metric} {c.target:g} within {c.max_rounds} rounds "
                         f"(V = {[p.local_steps for p in points]}); the fit needs 3. The best reached was "
                         f"{best['best']:.4g} (V = {best['local_steps']}, seed {best['seed']}); the runs are kept in "
                         f"convergence.json and the cache: a rerun with a reachable target or more rounds reuses them",
                         field="convergence.target", value=c.target)
    fits = fit_all(points)
    holdout = leave_one_out(points)
    document["fit"] = fits
    document["holdout"] = holdout
    a, v = fits["fedsllm"]["a"], fits["fedsllm"]["v"]
    bound = convergence_constants(scenario.theory)
    strategies = strategy_table(world, scenario, {"bound": bound, "measured": (a, v)})
    strategies = measured_intervals(strategies, runs)
    chosen = chosen_form_rows(world, scenario, runs, fits, v)
    if chosen:
        strategies = pd.concat([strategies, pd.DataFrame(chosen)], ignore_index=True)
    document["strategies"] = strategies.to_dict(orient="records")
    check = _check_run(scenario, world, strategies, (a, v), data, progress, fedsllm_rounds, runs)
    document["check"] = check
    write_json(out / "convergence.json", document)
    plots.convergence_fit(runs, points, fits, c.max_rounds, out / "convergence.png",
                          f"{scenario.name}: rounds to {c.metric} {'>=' if c.metric == 'eval_accuracy' else '<='} "
                          f"{c.target:g} against local iterations V", check)
    measured = strategies[strategies["source"] == "measured"]
    metrics = {delay_metric(r.strategy): float(r.T_s) for r in measured.itertuples()}
    metrics["fit_a"], metrics["fit_v"] = a, v
    if check:
        metrics["check_error_pct"] = check["error_pct"]
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "convergence", "metrics": metrics,
                                      "headline": [delay_metric(n) for n in measured["strategy"]],
                                      "headline_meaning": HEADLINE, "theory": {"source": "measured", "a": a, "v": v},
                                      "bound": {"a": bound[0], "v": bound[1]}})
    _report(scenario, source, out, runs, points, never, fits, holdout, strategies, check)
    lines = [f"V = {p.local_steps:>3}: {p.mean_rounds:.3g} rounds to target (sigma {p.sigma_rounds:.2g}, "
             f"{p.reached} reached, {p.censored} censored)" for p in points]
    lines += [f"V = {V:>3}: no run reached the target in {c.max_rounds} rounds" for V in never]
    lines.append(f"fit R(V) = a / (1 - 2^(-V/v)): a = {a:.4g}, v = {v:.4g}; better form: {fits['better']}")
    for r in measured.itertuples():
        band = f" (90 % of new seeds: {r.T_low_90_s:.6g}-{r.T_high_90_s:.6g} s)" if "T_low_90_s" in measured else ""
        lines.append(f"{r.strategy:>8} on the measured curve: V = {r.V:.3g}, {r.rounds:.4g} rounds, T = {r.T_s:.6g} s"
                     + band)
    if check:
        band = check["interval_90"]
        lines.append(f"check at V = {check['local_steps']}: measured {check['measured_rounds']} rounds vs predicted "
                     f"{check['predicted_rounds']:.4g}" + (f" (90 % for a new seed: {band['low']:.3g}-{band['high']:.3g}, "
                     f"{'inside' if check['within_interval'] else 'outside'})" if band else "")
                     + f"; simulated {check['simulated_s_at_measured_rounds']:.6g} s at the measured rounds vs "
                     f"{check['predicted_s']:.6g} s predicted (the real training took {check['train_wall_s']:.4g} s)")
    return lines + [f"-> {out}"]


def _check_run(scenario, world, strategies, constants, data, progress, fedsllm_rounds, grid_runs) -> dict | None:
    """Runs at the V the proposed allocation chooses on the measured curve, with the check seeds:
    their measured rounds-to-target against the fitted curve's prediction and its 90 % interval for
    one new seed (optimizer.convergence_fit.fit_seeds over the grid's runs: a run inside passes); in
    seconds, each rounds x the simulated round time there, beside the real training's wall time."""
    c = scenario.convergence
    if not c.check_seeds:
        return None
    a, v = constants
    proposed = strategies[(strategies["source"] == "measured") & (strategies["strategy"] == "proposed")]
    if proposed.empty:
        return None
    chosen = float(proposed["V"].iloc[0])
    V = max(1, int(round(chosen)))
    predicted_rounds = float(fedsllm_rounds(V, a, v))
    # room to reach the target however far the prediction is off (the runs stop when they reach it)
    rounds = max(c.max_rounds, math.ceil(CHECK_ROUNDS_FACTOR * predicted_rounds))
    checking = scenario.model_copy(update={"convergence": c.model_copy(update={"max_rounds": rounds})})
    runs = _train_runs(checking, [(V, s) for s in c.check_seeds], data, world, progress)
    hits = [r["rounds_to_target"] for r in runs]
    round_s = round_seconds_at(world, scenario, V, v)
    grid = sorted(set(c.local_steps))
    from splitsim.optimizer.convergence_fit import fit_seeds

    try:
        interval = {k: float(x) for k, x in fit_seeds(grid_runs).interval(V).items()}
    except ValueError:  # too few runs reached the target for an interval
        interval = None
    out = {"chosen_V": chosen, "local_steps": V, "seeds": c.check_seeds, "runs": runs, "round_s": round_s,
           "max_rounds": rounds, "extrapolated": not grid[0] <= V <= grid[-1],
           "predicted_rounds": predicted_rounds, "predicted_s": predicted_rounds * round_s,
           "interval_90": interval, "train_wall_s": float(sum(r["train_wall_s"] for r in runs))}
    if any(h is None for h in hits):
        out.update({"measured_rounds": None, "simulated_s_at_measured_rounds": math.inf, "error_pct": math.inf,
                    "within_interval": False,
                    "note": f"{sum(h is None for h in hits)} check run(s) did not reach the target in {rounds} rounds"})
        return out
    measured = float(np.mean(hits))
    error = 100.0 * (predicted_rounds - measured) / measured
    inside = interval is not None and all(interval["low"] <= h <= interval["high"] for h in hits)
    out.update({"measured_rounds": measured, "simulated_s_at_measured_rounds": measured * round_s, "error_pct": error,
                "within_interval": inside})
    return out


def _report(scenario, source, out, runs, points, never, fits, holdout, strategies, check) -> None:
    c, t, m = scenario.convergence, scenario.training, scenario.model
    report = Report("Rounds to target against local iterations: measured convergence", scenario.name, source)
    report.paragraph(f"{t.dataset} with {m.source} (LoRA r = {m.lora.rank}, batch {m.batch_size}, {m.optimizer} lr "
                     f"{t.lr:g}), scheme {scenario.scheme}, {scenario.cell.users} users, {c.partition} partition; each run "
                     f"trains V mini-batch steps per user per round until {c.metric} "
                     f"{'>=' if c.metric == 'eval_accuracy' else '<='} {c.target:g} on {t.eval_split} or "
                     f"{c.max_rounds} rounds (censored). "
                     + (f"The crossing is read from the mean of the {c.smoothing_rounds} evaluations centred on each "
                        f"round, not from one noisy evaluation" if c.smoothing_rounds > 1 else
                        "The crossing is the first single evaluation at the target")
                     + (f"; each run trains {c.rounds_past_target} rounds past it" if c.rounds_past_target else "")
                     + f". Seeds {c.seeds}.")
    table = pd.DataFrame([{"V": p.local_steps, "mean rounds": p.mean_rounds, "sigma": p.sigma_rounds,
                           "reached": p.reached, "censored": p.censored,
                           "fedsllm fit": fits["fedsllm"]["predicted"][i], "inverse fit": fits["inverse"]["predicted"][i],
                           "drift fit": fits.get("drift", {}).get("predicted", [float("nan")] * len(points))[i]}
                          for i, p in enumerate(points)])
    report.table(table, "Rounds to target per V (a censored seed counts as max_rounds: the mean is then a lower "
                        "bound) and the fitted curves:")
    if never:
        report.paragraph(f"V = {never}: no seed reached the target in {c.max_rounds} rounds (left out of the fit).")
    forms = pd.DataFrame([{"form": fits[f]["form"], "held-out RMS error (%)": fits[f].get("held_out_rms_pct"),
                           **{k: fits[f][k] for k in ("weighted_sse", "aicc")},
                           "constants": ", ".join(f"{k} = {fits[f][k]:.4g}" for k in ("a", "v", "a1", "a2", "a3")
                                                  if k in fits[f])}
                          for f in ("fedsllm", "inverse", "drift") if f in fits])
    if fits["delta_aicc_fedsllm"] is not None:
        verdict = f"FedsLLM's form {fits['delta_aicc_fedsllm']:.3g} AICc behind it"
    else:
        verdict = f"FedsLLM's form's weighted SSE {fits['sse_ratio_fedsllm']:.3g} x the best"
    report.table(forms, f"The fits (weighted by 1/sigma^2), compared by {fits['criterion']}: the data favour "
                        f"'{fits['better']}'; {verdict}.")
    told = strategies[strategies["source"].str.startswith("measured, ")]
    if not told.empty:
        report.paragraph(f"The optimiser on the chosen form ('{fits['better']}', fitted to every run with the "
                         "seeds' scatter): V minimising its rounds x the optimised round time, and, risk-averse, "
                         "minimising the high end of the 90 % interval of one new seed's delay — "
                         + "; ".join(f"{r.source}: V = {r.V:.3g}, {r.T_s:.4g} s (90 %: {r.T_low_90_s:.4g}-"
                                     f"{r.T_high_90_s:.4g} s)" for r in told.itertuples()) + ".")
    if holdout:
        report.table(pd.DataFrame(holdout), "Held out: the FedsLLM form fitted without one V, its prediction there:")
    report.table(strategies, "Each strategy on the bound's (a, v) and on the measured one: the chosen eta and V, "
                             "rounds and delay to the target:")
    if check:
        where = ("outside the measured V, an extrapolation of the fit" if check["extrapolated"]
                 else "inside the measured V")
        band = check["interval_90"]
        judged = (f"{'inside' if check['within_interval'] else 'outside'} the 90 % interval for a new seed, "
                  f"{band['low']:.3g}-{band['high']:.3g} rounds" if band else "no interval: too few runs reached the target")
        outcome = (f"reached the target in {check['measured_rounds']:.3g} rounds against {check['predicted_rounds']:.3g} "
                   f"predicted ({check['error_pct']:+.1f} %): {judged}" if check["measured_rounds"]
                   else f"did not reach the target in {check['max_rounds']} rounds ({check['predicted_rounds']:.3g} "
                        "predicted)")
        report.paragraph(f"Check: the proposed allocation chooses V = {check['chosen_V']:.3g} on the measured curve; "
                         f"runs at V = {check['local_steps']} ({where}) with seeds {check['seeds']}, not in the fit, "
                         f"{outcome}. In seconds: rounds x the simulated round time there ({check['round_s']:.4g} s); "
                         f"the check's real training took {check['train_wall_s']:.4g} s of wall time on this host.")
    report.figure("convergence.png", "rounds to target against V: every seed, the means, the fitted forms; residuals")
    report.write(out)


def problems(scenario: Scenario) -> list[Problem]:
    from splitsim.scenarios.checks import training_problems

    out = []
    if scenario.model is not None and scenario.scheme in STUDY_SCHEMES:
        out += training_problems(scenario, [scenario.scheme])
    come_and_go = scenario.simulation.come_and_go_fields
    if come_and_go:
        out.append(Problem(come_and_go[0], "study 'convergence' measures rounds in which every user's update is "
                           "averaged (FedsLLM's bound has no users who come and go); `splitsim train` trains rounds "
                           "that follow the simulator's", getattr(scenario.simulation, come_and_go[0].split(".")[1]),
                           True))
    if scenario.training.aggregation != "sync":
        out.append(Problem("training.aggregation", "study 'convergence' measures rounds of synchronous FedAvg; "
                                                   "FedBuff is trained by `splitsim train` (its time to accuracy)",
                           scenario.training.aggregation, True))
    if scenario.theory.source == "measured":
        out.append(Problem("theory.source", "study 'convergence' measures the curve and compares it with the bound: "
                                            "set theory.source: bound", "measured", True))
    m = scenario.model
    if m is not None and m.task != "classification":
        out.append(Problem("model.task", "convergence measures accuracy and evaluation loss of a classifier",
                           m.task, True))
    return out


def ignores(scenario: Scenario) -> dict[str, str]:
    why = "study 'convergence' sets it for each run"
    return {"training.rounds": "study 'convergence' trains each run up to convergence.max_rounds",
            "training.schemes": "study 'convergence' trains the scenario's scheme",
            "training.partitions": "study 'convergence' trains on convergence.partition",
            "training.local_steps": why + " (convergence.local_steps)", "training.local_epochs": why,
            "simulation": "study 'convergence' optimises the round time; it does not simulate"}


def check_cost(scenario: Scenario) -> None:
    c = scenario.convergence
    steps = scenario.cell.users * c.max_rounds * (len(c.seeds) * sum(set(c.local_steps))
                                                  + len(c.check_seeds) * max(c.local_steps))
    if steps > STEPS_LIMIT:
        raise InputError(f"the grid could take up to {steps:,} mini-batch steps (users x V x max_rounds x runs), more "
                         f"than {STEPS_LIMIT:,}: lower it", field="convergence.max_rounds", value=c.max_rounds)


STUDY = Study(
    kind="convergence", title="rounds-to-target measured by real training over local iterations V, and fitted",
    run=run, reads=frozenset(), figure="convergence.png", headline_meaning=HEADLINE, needs_model=True,
    schemes=STUDY_SCHEMES, scheme_hint="convergence measures FedsLLM's rounds against local iterations for problem (17), "
                                  "which is SFL's: set scheme: sfl",
    solves_problem_17=lambda s: True, problems=problems, ignores=ignores, check_cost=check_cost, trains=True,
)
