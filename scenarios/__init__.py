"""Typed, validated scenario configuration and the plain data types every package exchanges."""

from .errors import InputError, Problem, ScenarioError
from .examples import SCENARIO_DIR, example_path, examples
from .loader import load_scenario, parse_scenario, read_yaml, scenario_to_dict, scenario_to_yaml, set_path
from .schema import (
    ALL_STRATEGIES,
    DYNAMIC_STRATEGIES,
    CellConfig,
    LoraConfig,
    ModelConfig,
    ChannelConfig,
    ComputeConfig,
    ConvergenceConfig,
    EmulationConfig,
    EnergyConfig,
    OptimizerConfig,
    RadioConfig,
    Scenario,
    SimulationConfig,
    StudyConfig,
    TheoryConfig,
    TrainingConfig,
    WorkloadConfig,
)
from .seeding import rng_for
from .devices import DEVICES, DeviceClass
from .types import Allocation, ChannelState, DelayInputs, EnergyInputs, dbm_to_watt, fdma_rate_bps
from .workload import BoundaryProfile, SegmentProfile, TierSummary, WorkloadProfile


__all__ = [
    "ALL_STRATEGIES", "DYNAMIC_STRATEGIES", "Allocation", "BoundaryProfile", "DEVICES", "DeviceClass", "LoraConfig", "ModelConfig",
    "SegmentProfile", "TierSummary", "WorkloadProfile", "CellConfig", "ChannelConfig", "ChannelState", "ComputeConfig", "ConvergenceConfig", "EmulationConfig", "EnergyConfig", "DelayInputs", "EnergyInputs",
    "InputError", "OptimizerConfig", "Problem", "RadioConfig", "SCENARIO_DIR", "Scenario", "ScenarioError",
    "SimulationConfig", "StudyConfig", "example_path", "examples", "TheoryConfig", "TrainingConfig", "WorkloadConfig", "dbm_to_watt", "fdma_rate_bps",
    "load_scenario", "parse_scenario", "read_yaml", "rng_for", "scenario_to_dict", "scenario_to_yaml", "set_path",
]
