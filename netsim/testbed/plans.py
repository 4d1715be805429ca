"""What the testbed runs and what the simulator predicts for it, from one scenario realisation.

`sfl_testbed(...)` builds the simulator's plan for the scenario's channel draw and allocation (the
same `build_sfl_plan` every SFL study uses), with the compute times replaced by the ones measured
by the device processes (analysis/testbed/roles.py), runs it in SimPy, and reads each link's rate off the
plan (bits / seconds of its transfer): the rate its shaper is given. The devices' specs carry
those rates; the predicted events are the simulator's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..engine import EventLog
from ..protocols.sfl import run_sfl
from ..simulate import build_sfl_plan, run_protocol
from ..topology import FED_SERVER, MAIN_SERVER, user_node
from .device import DeviceSpec, LinkSpec


@dataclass
class TestbedPlan:
    """The devices to start, the simulator's predicted events and round ends, and each link's rate."""

    specs: list[DeviceSpec]
    predicted: pd.DataFrame  # EventLog.to_frame()
    round_end_s: np.ndarray
    links: pd.DataFrame  # link, kind, rate_bps, latency_s, message_bits


def _run(runner, plan, sim) -> tuple[pd.DataFrame, np.ndarray]:
    _, acc, log, _ = run_protocol(runner, plan, sim)
    return log.to_frame() if isinstance(log, EventLog) else log, np.asarray(acc.round_end_s)


def testbed_simulation(sim):
    """The simulator's options for a comparison: SimPy (the oracle engine), every event recorded."""
    return sim.model_copy(update={"engine": "simpy", "record_events": True, "max_rounds": None,
                                  "event_detail": "activity"})


def sfl_testbed(world, allocation, calibration: dict[str, float], model: dict, rounds: int, local_steps: int,
                seed: int = 0) -> TestbedPlan:
    """SFL: `allocation`'s sub-bands with V = local_steps and I0 = rounds; user k <-> main server
    (activations up, gradients down), user k <-> fed server (adapter up, broadcast down)."""
    sc = world.scenario
    k_users = world.inputs.users
    alloc = replace(allocation, V=float(local_steps), I0=float(rounds))
    sim = testbed_simulation(sc.simulation)
    plan = build_sfl_plan(world.inputs, alloc, sim, sc.radio, sc.channel, world.channel, world.simulation_rng(),
                          sc.cell)
    plan = replace(plan, client_forward_s=np.full(k_users, calibration["user_forward"]),
                   client_backward_s=np.full(k_users, calibration["user_backward"]),
                   server_s=np.full(k_users, calibration["server"]))
    predicted, ends = _run(run_sfl, plan, sim)
    up = plan.activation_bits / plan.uplink_activation_s[0]
    adapter_up = plan.adapter_bits / plan.uplink_adapter_s[0]
    down = plan.gradient_bits / plan.downlink_gradient_s[0]
    cuts = tuple(sc.model.cut_layers)
    common = dict(model=model, cuts=cuts, users=k_users, rounds=rounds, local_steps=local_steps, seed=seed)
    specs = [DeviceSpec(name=user_node(k), role="sfl_user", user=k,
                        links={MAIN_SERVER: LinkSpec(float(up[k])), FED_SERVER: LinkSpec(float(adapter_up[k]))},
                        **common) for k in range(k_users)]
    specs.append(DeviceSpec(name=MAIN_SERVER, role="sfl_main", user=-1,
                            links={user_node(k): LinkSpec(float(down[k])) for k in range(k_users)}, **common))
    specs.append(DeviceSpec(name=FED_SERVER, role="sfl_fed", user=-1,
                            links={user_node(k): LinkSpec(float(down[k])) for k in range(k_users)}, **common))
    rows = []
    for k in range(k_users):
        me = user_node(k)
        rows += [(f"{me}->{MAIN_SERVER}", "uplink_activation", up[k], plan.activation_bits),
                 (f"{me}->{FED_SERVER}", "uplink_adapter", adapter_up[k], plan.adapter_bits),
                 (f"{MAIN_SERVER}->{me}", "downlink_gradient", down[k], plan.gradient_bits),
                 (f"{FED_SERVER}->{me}", "downlink_adapter", down[k], plan.adapter_bits)]
    links = pd.DataFrame(rows, columns=["link", "kind", "rate_bps", "message_bits"]).assign(latency_s=0.0)
    return TestbedPlan(specs, predicted, ends, links)


def _scheme_plan(world, scheme: str, rounds: int, local_steps: int):
    """The simulator's SL / FL / SplitLLM plan for `rounds` rounds of `local_steps` batches per user."""
    from splitsim.scenarios import rng_for

    from ..schemes import build_fl_plan, build_sl_plan, build_splitllm_plan

    sc = world.scenario
    sim = testbed_simulation(sc.simulation).model_copy(update={"rounds": rounds})
    batches = np.full(world.inputs.users, local_steps)
    rng = rng_for(sc.seed, f"simulation-{scheme}")
    cuts = sc.model.cut_layers
    if scheme == "sl":
        plan = build_sl_plan(world.profile, cuts[0], sc.compute, sc.radio, sim, sc.channel, world.channel, batches, rng,
                             cell=sc.cell)
    elif scheme == "fl":
        plan = build_fl_plan(world.profile, sc.compute, sc.radio, sim, sc.channel, world.channel, batches, rng,
                             cell=sc.cell)
    else:
        plan = build_splitllm_plan(world.profile, cuts, sc.compute, sc.radio, sim, sc.channel, world.edge_link,
                                   world.association, sc.cell.edge_servers, batches, rng, world.edge_cross_gain,
                                   cell=sc.cell, edge_positions_m=world.edge_positions_m)
    return plan, sim


def _one_rate(bits_a: float, seconds_a: np.ndarray, bits_b: float, seconds_b: np.ndarray, what: str) -> np.ndarray:
    """The rate of a link that carries two kinds of message (they must agree: one sub-band)."""
    a, b = bits_a / seconds_a, bits_b / seconds_b
    if not np.allclose(a, b, rtol=1e-9):
        raise ValueError(f"{what}: the simulator prices its two messages at different rates")
    return a


def sl_testbed(world, calibration: dict[str, float], model: dict, rounds: int, local_steps: int,
               seed: int = 0) -> TestbedPlan:
    """SL: users in turn with the main server; the active user has the whole band both ways."""
    from ..protocols.sl import run_sl

    plan, sim = _scheme_plan(world, "sl", rounds, local_steps)
    plan = replace(plan, user_forward_s=calibration["user_forward"], user_backward_s=calibration["user_backward"],
                   server_s=calibration["server"])
    predicted, ends = _run(run_sl, plan, sim)
    bits = plan.bits
    up = _one_rate(bits["activation"], plan.uplink_s[0], bits["user_adapter"], plan.user_adapter_up_s[0], "SL uplink")
    down = _one_rate(bits["gradient"], plan.downlink_gradient_s[0], bits["user_adapter"], plan.user_adapter_down_s[0],
                     "SL downlink")
    k_users = plan.users
    common = dict(model=model, cuts=tuple(world.scenario.model.cut_layers), users=k_users, rounds=rounds,
                  local_steps=local_steps, seed=seed)
    specs = [DeviceSpec(name=user_node(k), role="sl_user", user=k, links={MAIN_SERVER: LinkSpec(float(up[k]))},
                        **common) for k in range(k_users)]
    specs.append(DeviceSpec(name=MAIN_SERVER, role="sl_server", user=-1,
                            links={user_node(k): LinkSpec(float(down[k])) for k in range(k_users)}, **common))
    rows = []
    for k in range(k_users):
        me = user_node(k)
        rows += [(f"{me}->{MAIN_SERVER}", "uplink_activation", up[k], bits["activation"]),
                 (f"{me}->{MAIN_SERVER}", "uplink_adapter", up[k], bits["user_adapter"]),
                 (f"{MAIN_SERVER}->{me}", "downlink_gradient", down[k], bits["gradient"]),
                 (f"{MAIN_SERVER}->{me}", "downlink_adapter", down[k], bits["user_adapter"])]
    links = pd.DataFrame(rows, columns=["link", "kind", "rate_bps", "message_bits"]).assign(latency_s=0.0)
    return TestbedPlan(specs, predicted, ends, links)


def fl_testbed(world, calibration: dict[str, float], model: dict, rounds: int, local_steps: int,
               seed: int = 0) -> TestbedPlan:
    """FL: every user trains the whole model's adapters; equal FDMA shares both ways."""
    from ..protocols.fl import run_fl

    plan, sim = _scheme_plan(world, "fl", rounds, local_steps)
    plan = replace(plan, train_s=calibration["user_step"])
    predicted, ends = _run(run_fl, plan, sim)
    up = plan.adapter_bits / plan.adapter_up_s[0]
    down = plan.adapter_bits / plan.adapter_down_s[0]
    k_users = plan.users
    common = dict(model=model, cuts=tuple(world.scenario.model.cut_layers), users=k_users, rounds=rounds,
                  local_steps=local_steps, seed=seed)
    specs = [DeviceSpec(name=user_node(k), role="fl_user", user=k, links={FED_SERVER: LinkSpec(float(up[k]))},
                        **common) for k in range(k_users)]
    specs.append(DeviceSpec(name=FED_SERVER, role="fl_fed", user=-1,
                            links={user_node(k): LinkSpec(float(down[k])) for k in range(k_users)}, **common))
    rows = []
    for k in range(k_users):
        me = user_node(k)
        rows += [(f"{me}->{FED_SERVER}", "uplink_adapter", up[k], plan.adapter_bits),
                 (f"{FED_SERVER}->{me}", "downlink_adapter", down[k], plan.adapter_bits)]
    links = pd.DataFrame(rows, columns=["link", "kind", "rate_bps", "message_bits"]).assign(latency_s=0.0)
    return TestbedPlan(specs, predicted, ends, links)


def splitllm_testbed(world, calibration: dict[str, float], model: dict, rounds: int, local_steps: int,
                     seed: int = 0) -> TestbedPlan:
    """SplitLLM: users in turn at their edge over the edge's band; edges <-> cloud over the backhaul
    (its rate and latency, both ways)."""
    from ..protocols.splitllm import run_splitllm
    from ..topology import CLOUD, edge_node

    plan, sim = _scheme_plan(world, "splitllm", rounds, local_steps)
    plan = replace(plan, user_forward_s=calibration["user_forward"], user_backward_s=calibration["user_backward"],
                   edge_forward_s=calibration["edge_forward"], edge_backward_s=calibration["edge_backward"],
                   cloud_s=calibration["cloud"])
    predicted, ends = _run(run_splitllm, plan, sim)
    bits = plan.bits
    up = _one_rate(bits["activation"], plan.uplink_s[0], bits["user_adapter"], plan.user_adapter_up_s[0],
                   "SplitLLM uplink")
    down = _one_rate(bits["gradient"], plan.downlink_gradient_s[0], bits["user_adapter"], plan.user_adapter_down_s[0],
                     "SplitLLM downlink")
    haul = LinkSpec(plan.backhaul_rate_bps, plan.backhaul_latency_s)
    groups = {edge_node(m): tuple(users) for m, users in enumerate(plan.edge_users) if users}
    edge_of = {k: edge for edge, users in groups.items() for k in users}
    common = dict(model=model, cuts=tuple(world.scenario.model.cut_layers), users=plan.users, rounds=rounds,
                  local_steps=local_steps, seed=seed, groups=groups)
    specs = [DeviceSpec(name=user_node(k), role="splitllm_user", user=k, links={edge_of[k]: LinkSpec(float(up[k]))},
                        **common) for k in range(plan.users)]
    specs += [DeviceSpec(name=edge, role="splitllm_edge", user=-1,
                         links={CLOUD: haul, **{user_node(k): LinkSpec(float(down[k])) for k in users}}, **common)
              for edge, users in groups.items()]
    specs.append(DeviceSpec(name=CLOUD, role="splitllm_cloud", user=-1, links={edge: haul for edge in groups}, **common))
    rows = []
    for k in range(plan.users):
        me, edge = user_node(k), edge_of[k]
        rows += [(f"{me}->{edge}", "uplink_activation", up[k], bits["activation"], 0.0),
                 (f"{me}->{edge}", "uplink_adapter", up[k], bits["user_adapter"], 0.0),
                 (f"{edge}->{me}", "downlink_gradient", down[k], bits["gradient"], 0.0),
                 (f"{edge}->{me}", "downlink_adapter", down[k], bits["user_adapter"], 0.0)]
    for edge in groups:
        rows += [(f"{edge}->{CLOUD}", "backhaul_activation", haul.rate_bps, bits["backhaul_activation"], haul.latency_s),
                 (f"{CLOUD}->{edge}", "backhaul_gradient", haul.rate_bps, bits["backhaul_gradient"], haul.latency_s)]
    links = pd.DataFrame(rows, columns=["link", "kind", "rate_bps", "message_bits", "latency_s"])
    return TestbedPlan(specs, predicted, ends, links)
