"""What the testbed runs and what the simulator predicts for it, from one scenario realisation.

`sfl_testbed(...)` builds the simulator's plan for the scenario's channel draw and allocation (the
same `build_sfl_plan` every SFL study uses), with the compute times replaced by the ones measured
on this host (netsim.testbed.steps.calibrate), runs it in SimPy, and reads each link's rate off the
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
    links = pd.DataFrame(rows, columns=["link", "kind", "rate_bps", "message_bits"])
    links["latency_s"] = 0.0
    return TestbedPlan(specs, predicted, ends, links)
