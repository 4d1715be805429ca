"""Realise a scenario: every random draw, made once from named streams of the scenario's seed."""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from splitsim.netsim import (associate_users, build_topology, cross_link_gains, edge_link_state, sample_channel,
                    sample_edge_positions)
from splitsim.optimizer import delay_inputs_from_profile, sample_delay_inputs
from splitsim.optimizer.delay_model import batches_per_user
from splitsim.optimizer.energy.model import energy_inputs
from splitsim.scenarios import (ChannelState, DelayInputs, EnergyInputs, InputError, Scenario, WorkloadProfile, dbm_to_watt,
                       rng_for)


@dataclass(frozen=True)
class World:
    """One realisation of a scenario: the channel draw, the per-user demand, the edge positions."""

    scenario: Scenario
    channel: ChannelState
    inputs: DelayInputs
    edge_positions_m: np.ndarray
    profile: WorkloadProfile | None = None  # measured from `scenario.model`, when there is one
    association: np.ndarray | None = None  # (K,) index of each user's nearest edge server
    edge_link: ChannelState | None = None  # each user's channel to its edge server
    edge_cross_gain: np.ndarray | None = None  # (K, M) linear gain of each user to every edge (interference)

    def batches_per_round(self) -> np.ndarray:
        """Full mini-batches each user trains per local epoch (D_k // batch size), shape (K,)."""
        if self.profile is None:
            raise ValueError("batches per round need a model")
        return batches_per_user(self.inputs.samples, self.profile.batch_size)

    @property
    def energy(self) -> EnergyInputs:
        """What each user's battery pays (optimizer.energy.model), at the scenario's p_max."""
        sc = self.scenario
        return replace(energy_inputs(sc.compute, sc.energy, sc.radio, self.inputs.users, self.profile is not None),
                       max_tx_power_w=float(dbm_to_watt(self.channel.tx_power_dbm)))

    def topology(self) -> nx.DiGraph:
        return build_topology(self.scenario.cell, self.channel, self.edge_positions_m)

    def at_tx_power(self, tx_power_dbm: float) -> World:
        """The same draw with every user transmitting at `tx_power_dbm`."""
        channel = self.channel.with_tx_power(tx_power_dbm)
        edge_link = self.edge_link.with_tx_power(tx_power_dbm) if self.edge_link is not None else None
        return replace(self, channel=channel, inputs=self.inputs.with_snr(channel.snr_coeff_hz), edge_link=edge_link)

    def simulation_rng(self) -> np.random.Generator:
        """A fresh generator for the simulator's own draws (per-round redraws, stragglers)."""
        return rng_for(self.scenario.seed, "simulation")


def load_profile(scenario: Scenario, remeasure: bool | str = False) -> WorkloadProfile | None:
    """The scenario's model profile (measured with torch, or read from `model.profile_path` or the
    cache; `remeasure` True measures it again and replaces the cached one, "if_loaded" when the cached
    one was measured under load and the host is quiet now)."""
    if scenario.model is None:
        return None
    if scenario.model.profile_path is not None and remeasure == "if_loaded":
        remeasure = False  # a stored profile is the user's: read as it is
    if remeasure and scenario.model.profile_path is not None:
        raise InputError("remeasuring measures the model, but the scenario reads a stored profile; remove "
                         "model.profile_path to measure", field="model.profile_path", value=scenario.model.profile_path)
    from splitsim.learning import profile_from_config  # torch is imported only when a model is named

    return profile_from_config(scenario.model, remeasure=remeasure)


def realise(scenario: Scenario, profile: WorkloadProfile | None = None, remeasure: bool | str = False) -> World:
    """Draw the channel (stream 'channel'), edge positions ('edges') and compute demand ('compute').

    With a `model`, message sizes and compute come from its profile (passed in, or loaded); the inputs
    carry the radio's link models (scenarios.nr_link.link_rates). `remeasure`: as
    learning.profile.profile_model's ("if_loaded" where the result holds the host's step times)."""
    channel = sample_channel(scenario.cell, scenario.channel, scenario.radio, rng_for(scenario.seed, "channel"))
    edges = sample_edge_positions(scenario.cell, rng_for(scenario.seed, "edges"))
    profile = profile if profile is not None else load_profile(scenario, remeasure)
    if profile is None:
        inputs = sample_delay_inputs(scenario.theory, scenario.compute, scenario.workload, scenario.radio, channel,
                                     rng_for(scenario.seed, "compute"))
    else:
        inputs = delay_inputs_from_profile(scenario.theory, scenario.compute, scenario.workload, scenario.radio,
                                           scenario.model, profile, channel, rng_for(scenario.seed, "compute"))
    association = edge_link = cross_gain = None
    if len(edges):
        association = associate_users(channel.positions_m, edges)
        edge_link = edge_link_state(channel.positions_m, edges, association, scenario.channel,
                                    scenario.radio.max_tx_power_dbm, rng_for(scenario.seed, "edge-channel"))
        cross_gain = cross_link_gains(channel.positions_m, edges, association, edge_link, scenario.channel,
                                      rng_for(scenario.seed, "edge-interference"))
    return World(scenario=scenario, channel=channel, inputs=inputs, edge_positions_m=edges, profile=profile,
                 association=association, edge_link=edge_link, edge_cross_gain=cross_gain)
