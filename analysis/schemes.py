"""The four schemes on one cell and one model: simulated delay, per-tier memory, user traffic.

Every scheme trains one local epoch per round for `simulation.rounds` rounds. SplitLLM splits at
both cuts (user | edge | cloud); SFL and SL at the first cut (user | main server); FL runs the
whole model on the users. SFL's bandwidth is the FedsLLM allocation for that workload (problem
(17) at one epoch per round) unless `bandwidth` is 'equal'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from splitsim.netsim import SimulationResult, build_fl_plan, build_sl_plan, build_splitllm_plan, run_plan, simulate_sfl
from splitsim.netsim.schemes import build_fedbuff_plan, build_fedbuff_sfl_plan, run_fedbuff_plan
from splitsim.optimizer import delay_inputs_from_profile, epoch_allocation
from splitsim.scenarios import DEVICES, InputError, WorkloadProfile, rng_for

from .world import World

GIB = 2**30
SCHEMES = ("splitllm", "sfl", "fl", "sl")
SCHEME_LABEL = {"splitllm": "SplitLLM", "sfl": "SFL (FedsLLM)", "fl": "FL", "sl": "SL"}


def tier_limits(scenario) -> dict[str, tuple[float, str]]:
    """Memory of one device of each tier (bytes) and where the figure comes from."""
    compute, study = scenario.compute, scenario.study
    limits = {}
    for role in ("user", "edge", "server", "cloud"):
        device = DEVICES[getattr(compute, f"{role}_device")]
        limits[role] = (float(compute.memory_bytes(role)),
                        f"{device.name}: {device.usable_memory_bytes / GIB:.3g} of its {device.memory_bytes / GIB:.3g} "
                        "GiB usable")
    if study.user_memory_limit_gib is not None:
        limits["user"] = (study.user_memory_limit_gib * GIB, "study.user_memory_limit_gib")
    return limits


def fits(memory: dict[str, float], limits: dict[str, tuple[float, str]]) -> tuple[bool, str]:
    """(every tier fits its device, the reason when one does not: tier, GiB needed and available)."""
    over = [f"{tier} needs {need / GIB:.3g} GiB > {limits[tier][0] / GIB:.3g} GiB ({limits[tier][1]})"
            for tier, need in memory.items() if need > limits[tier][0]]
    return not over, "; ".join(over)


def spectrum_plan(scenario) -> dict[str, str]:
    """How each scheme uses the uplink spectrum in this scenario: the terms a comparison is made on."""
    radio, cell = scenario.radio, scenario.cell
    bs, bc = radio.uplink_main_bandwidth_hz / 1e6, radio.uplink_fed_bandwidth_hz / 1e6
    m = max(cell.edge_servers, 1)
    splitllm = (f"orthogonal: each of the {m} edges has B_s/M = {bs / m:.3g} MHz, used by one of its users at a time"
                if radio.edge_spectrum == "orthogonal" else
                f"full reuse: each of the {m} edges uses all of B_s = {bs:.3g} MHz, with interference from the "
                "other edges' active users")
    return {"splitllm": splitllm,
            "sfl": f"the {cell.users} users share B_s = {bs:.3g} MHz (FedsLLM allocation) and B_c = {bc:.3g} MHz",
            "sl": f"one user at a time on B_s = {bs:.3g} MHz",
            "fl": f"the {cell.users} users share B_c = {bc:.3g} MHz equally for their adapters"}


def scheme_memory_bytes(profile: WorkloadProfile, scheme: str, cuts: list[int], users: int, edges: int,
                        server_concurrency: int | None, cloud_concurrency: int | None) -> dict[str, int]:
    """Peak memory of each tier's device for one scheme.

    A tier model costs its parameters, gradients and optimizer state once, and saved activations
    per job it runs at once. SFL's main server keeps a trainable copy (adapters, gradients,
    optimizer state) per client over one frozen base; SplitLLM's cloud serves up to M edges at once;
    FL's server keeps a running sum and one incoming adapter.
    """
    n = profile.num_blocks
    c1 = cuts[0]

    def static(t):
        return t.param_bytes + t.grad_bytes + t.optimizer_bytes

    def dynamic(t):
        return t.activation_bytes + t.transient_bytes

    if scheme == "fl":
        whole = profile.whole()
        return {"user": whole.peak_memory_bytes, "server": 2 * whole.adapter_bytes}
    user = profile.tier(0, c1)
    if scheme == "splitllm":
        edge, cloud = profile.tier(c1, cuts[1]), profile.tier(cuts[1], n)
        parallel = edges if cloud_concurrency is None else min(edges, cloud_concurrency)
        return {"user": user.peak_memory_bytes, "edge": edge.peak_memory_bytes,
                "cloud": static(cloud) + parallel * dynamic(cloud)}
    server = profile.tier(c1, n)
    if scheme == "sl":
        return {"user": user.peak_memory_bytes, "server": server.peak_memory_bytes}
    parallel = users if server_concurrency is None else min(users, server_concurrency)
    frozen = server.param_bytes - server.adapter_bytes
    per_client = server.adapter_bytes + server.grad_bytes + server.optimizer_bytes
    return {"user": user.peak_memory_bytes, "server": frozen + users * per_client + parallel * dynamic(server)}


def scheme_traffic_bytes(profile: WorkloadProfile, scheme: str, cuts: list[int], batches: np.ndarray) -> dict:
    """Mean user-side traffic per round and user: the Table II figure and everything sent."""
    c1 = cuts[0]
    b = profile.boundary(c1)
    mean_batches = float(np.mean(batches))
    user_adapter = profile.tier(0, c1).adapter_bytes
    if scheme == "fl":
        both = 2 * profile.whole().adapter_bytes
        return {"table_ii": both, "all": both}
    split = mean_batches * (b.forward_bytes + b.backward_bytes)
    everything = split + mean_batches * b.side_bytes + (2 if scheme in ("sfl", "splitllm", "sl") else 0) * user_adapter
    return {"table_ii": split, "all": everything}


@dataclass
class SchemeOutcome:
    scheme: str
    result: SimulationResult
    memory_bytes: dict[str, int]
    traffic_bytes: dict[str, float]
    limits: dict[str, tuple[float, str]]

    def row(self) -> dict:
        r = self.result
        row = {"scheme": self.scheme, "label": SCHEME_LABEL[self.scheme], "delay_s": r.total_delay_s,
               "rounds": r.rounds, "round_s": r.total_delay_s / max(r.rounds, 1e-12),
               "user_traffic_gib_per_round": self.traffic_bytes["table_ii"] / GIB,
               "user_traffic_all_gib_per_round": self.traffic_bytes["all"] / GIB,
               "user_compute_s": float(np.mean(r.compute_s)), "user_uplink_s": float(np.mean(r.uplink_s)),
               "user_downlink_s": float(np.mean(r.downlink_s)), "simpy_events": r.simpy_events}
        energy = r.user_energy_j()
        if energy is not None:  # per user and round (J): compute, uplink, downlink, idle; and the worst user's
            rounds = max(r.rounds, 1e-12)
            for part in ("compute", "uplink", "downlink", "idle", "total"):
                row[f"user_{part}_j_per_round"] = float(energy[f"{part}_j"].mean() / rounds)
            row["worst_user_j_per_round"] = float(energy["total_j"].max() / rounds)
        for tier in ("user", "edge", "cloud", "server"):
            row[f"{tier}_memory_gib"] = self.memory_bytes[tier] / GIB if tier in self.memory_bytes else float("nan")
        row["fits_devices"], row["infeasible_reason"] = fits(self.memory_bytes, self.limits)
        return row


def run_scheme(world: World, scheme: str, bandwidth: str = "optimised", on_round=None) -> SchemeOutcome:
    """Simulate `scheme` on `world` (which must carry a model profile) for `simulation.rounds` rounds."""
    scenario, profile = world.scenario, world.profile
    if profile is None:
        raise InputError("comparing schemes needs a model", field="model", value=None)
    sim, cuts = scenario.simulation, scenario.model.cut_layers
    batches = world.batches_per_round()
    rng = rng_for(scenario.seed, f"simulation-{scheme}")
    energy = world.energy
    if scenario.radio.link_model != "shannon":  # nobody out of coverage on the NR link
        from splitsim.optimizer.link_plan import check_coverage_of
        from splitsim.scenarios.nr_link import link_rates

        link = world.edge_link if scheme == "splitllm" and world.edge_link is not None else world.channel
        check_coverage_of(link_rates(scenario.radio, link)[0], link.snr_coeff_hz)
    if scheme == "splitllm":
        if len(cuts) != 2 or world.edge_link is None:
            raise InputError("SplitLLM needs two model.cut_layers and cell.edge_servers >= 1", field="model.cut_layers",
                             value=cuts)
        plan = build_splitllm_plan(profile, cuts, scenario.compute, scenario.radio, sim, scenario.channel,
                                   world.edge_link, world.association, scenario.cell.edge_servers, batches, rng,
                                   world.edge_cross_gain, cell=scenario.cell, edge_positions_m=world.edge_positions_m)
        result = run_plan(plan, sim, scenario.channel, on_round, energy)
    elif scheme == "sl":
        plan = build_sl_plan(profile, cuts[0], scenario.compute, scenario.radio, sim, scenario.channel, world.channel,
                             batches, rng, cell=scenario.cell)
        result = run_plan(plan, sim, scenario.channel, on_round, energy)
    elif scheme in ("fl", "sfl") and scenario.training.aggregation == "fedbuff":
        t, users = scenario.training, scenario.cell.users
        concurrency = t.concurrency or users
        buffered = (t.buffer_size or concurrency, concurrency, int(rng.integers(2**63)))
        if scheme == "fl":
            plan = build_fedbuff_plan(profile, scenario.compute, scenario.radio, sim, world.channel, batches, *buffered,
                                      channel_cfg=scenario.channel, cell=scenario.cell, rng=rng)
        else:
            model = scenario.model.model_copy(update={"cut_layers": [cuts[0]]})
            inputs = delay_inputs_from_profile(scenario.theory, scenario.compute, scenario.workload, scenario.radio,
                                               model, profile, world.channel, rng_for(scenario.seed, "compute"))
            plan = build_fedbuff_sfl_plan(inputs, scenario.radio, sim, world.channel, batches, *buffered,
                                          channel_cfg=scenario.channel, cell=scenario.cell, rng=rng)
        result = run_fedbuff_plan(plan, sim, scenario.channel, on_round, energy)
    elif scheme == "fl":
        plan = build_fl_plan(profile, scenario.compute, scenario.radio, sim, scenario.channel, world.channel, batches,
                             rng, cell=scenario.cell)
        result = run_plan(plan, sim, scenario.channel, on_round, energy)
    elif scheme == "sfl":
        model = scenario.model.model_copy(update={"cut_layers": [cuts[0]]})
        inputs = delay_inputs_from_profile(scenario.theory, scenario.compute, scenario.workload, scenario.radio, model,
                                           profile, world.channel, rng_for(scenario.seed, "compute"))
        inputs = replace(inputs, samples=world.inputs.samples, iteration_weights=batches.astype(float))
        alloc = epoch_allocation(inputs, sim.rounds, bandwidth)
        result = simulate_sfl(inputs, alloc, sim, scenario.radio, scenario.channel, world.channel, rng, on_round,
                              energy, cell=scenario.cell)
    else:
        raise InputError(f"unknown scheme; choose from {', '.join(SCHEMES)}", field="scheme", value=scheme)
    memory = scheme_memory_bytes(profile, scheme, cuts, scenario.cell.users, scenario.cell.edge_servers,
                                 sim.server_concurrency, sim.cloud_concurrency)
    return SchemeOutcome(scheme, result, memory, scheme_traffic_bytes(profile, scheme, cuts, batches),
                         tier_limits(scenario))
