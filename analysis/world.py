"""Realise a scenario: every random draw, made once from named streams of the scenario's seed."""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from netsim import build_topology, sample_channel, sample_edge_positions
from optimizer import sample_delay_inputs
from scenarios import ChannelState, DelayInputs, Scenario, rng_for


@dataclass(frozen=True)
class World:
    """One realisation of a scenario: the channel draw, the per-user demand, the edge positions."""

    scenario: Scenario
    channel: ChannelState
    inputs: DelayInputs
    edge_positions_m: np.ndarray

    def topology(self) -> nx.DiGraph:
        return build_topology(self.scenario.cell, self.channel, self.edge_positions_m)

    def at_tx_power(self, tx_power_dbm: float) -> World:
        """The same draw with every user transmitting at `tx_power_dbm`."""
        channel = self.channel.with_tx_power(tx_power_dbm)
        return replace(self, channel=channel, inputs=self.inputs.with_snr(channel.snr_coeff_hz))

    def simulation_rng(self) -> np.random.Generator:
        """A fresh generator for the simulator's own draws (per-round redraws, stragglers)."""
        return rng_for(self.scenario.seed, "simulation")


def realise(scenario: Scenario) -> World:
    """Draw the channel (stream 'channel'), edge positions ('edges') and compute demand ('compute')."""
    channel = sample_channel(scenario.cell, scenario.channel, scenario.radio, rng_for(scenario.seed, "channel"))
    edges = sample_edge_positions(scenario.cell, rng_for(scenario.seed, "edges"))
    inputs = sample_delay_inputs(scenario.theory, scenario.compute, scenario.workload, scenario.radio, channel,
                                 rng_for(scenario.seed, "compute"))
    return World(scenario=scenario, channel=channel, inputs=inputs, edge_positions_m=edges)
