"""Scenario files: shipped ones validate, defaults are FedsLLM §IV, malformed ones fail cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splitsim.scenarios import SCENARIO_DIR, Scenario, ScenarioError, load_scenario, parse_scenario, scenario_to_yaml, set_path

SHIPPED = sorted(SCENARIO_DIR.glob("*.yaml"))


def _data_missing(path) -> bool:
    """A training scenario whose data folder (relative to the file) is not on this machine."""
    import yaml

    data_path = (yaml.safe_load(path.read_text()).get("training") or {}).get("data_path")
    return data_path is not None and not (path.parent / data_path).is_dir()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    if _data_missing(path):  # then the data folder, and only it, is the problem
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        assert [p.field for p in info.value.problems] == ["training.data_path"]
        pytest.skip(f"{path.name}: its training data folder is not beside the repository")
    assert isinstance(load_scenario(path), Scenario)


def test_validate_command_accepts_all_shipped(cli):
    shipped = [p for p in SHIPPED if not _data_missing(p)]
    code, out, err = cli("validate", *shipped)
    assert code == 0, err
    assert out.count(": ok") == len(shipped)


def test_defaults_are_fedsllm_section_iv():
    s = Scenario()
    assert (s.cell.shape, s.cell.side_m, s.cell.users) == ("square", 500.0, 50)
    assert (s.channel.path_loss_db_at_1km, s.channel.path_loss_db_per_decade) == (128.1, 37.6)
    assert (s.channel.shadowing_sigma_db, s.channel.noise_psd_dbm_per_hz) == (8.0, -174.0)
    assert (s.radio.uplink_main_bandwidth_hz, s.radio.uplink_fed_bandwidth_hz) == (20e6, 20e6)
    assert s.radio.max_tx_power_dbm == 10.0
    assert s.compute.user_cpu_hz == 2e9 and s.compute.cycles_per_sample_range == [1e4, 3e4]
    assert (s.workload.activation_bits, s.workload.adapter_bits, s.workload.dataset_samples) == (281e3, 28.1e3, 60021)
    assert (s.theory.xi, s.theory.delta, s.theory.epsilon0) == (0.1, 0.1, 1e-3)
    assert s.optimizer.fixed_eta == 0.1


def test_fig2_scenario_equals_defaults_except_study_and_names():
    fig2 = load_scenario(SCENARIO_DIR / "fedsllm_fig2.yaml")
    default = Scenario()
    for section in ("cell", "channel", "radio", "compute", "workload", "theory", "optimizer", "simulation"):
        assert getattr(fig2, section) == getattr(default, section), section


def test_yaml_accepts_exponent_floats_without_dot():
    s = parse_scenario({"radio": {"uplink_main_bandwidth_hz": 1e6}})
    assert s.radio.uplink_main_bandwidth_hz == 1e6


def test_resolved_yaml_round_trips(tmp_path):
    s = load_scenario(SCENARIO_DIR / "fedsllm_fig2.yaml")
    path = tmp_path / "r.yaml"
    path.write_text(scenario_to_yaml(s, "header line"), encoding="utf-8")
    assert load_scenario(path) == s


def test_schema_command_prints_json_schema(cli):
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert "cell" in schema["properties"] and "$defs" in schema
    assert schema["$defs"]["RadioConfig"]["properties"]["max_tx_power_dbm"]["default"] == 10.0


def test_set_path_rejects_unknown_field_with_hint():
    with pytest.raises(ScenarioError, match="did you mean 'users'"):
        set_path({}, "cell.usres", 3)
    assert set_path({}, "cell.users", 3) == {"cell": {"users": 3}}


# (file text, field path expected in the message, text expected in the message)
MALFORMED = [
    ("", "", "file is empty"),
    ("# only a comment\n", "", "holds no data"),
    ("- 1\n- 2\n", "", "top level must be a mapping"),
    ("cell: {users: 5\n", "", "YAML syntax error at line"),
    ("cell:\n  users: 5\n  users: 6\n", "", "duplicate key 'users'"),
    ("sede: 3\n", "sede", "did you mean 'seed'"),
    ("radio:\n  max_tx_power_dmb: 10\n", "radio.max_tx_power_dmb", "did you mean 'max_tx_power_dbm'"),
    ("radio:\n  uplink_main_bandwidth_hz: -20e6\n", "radio.uplink_main_bandwidth_hz", "greater than 0"),
    ("radio:\n  uplink_fed_bandwidth_hz: 0\n", "radio.uplink_fed_bandwidth_hz", "greater than 0"),
    ("cell:\n  users: 0\n", "cell.users", "greater than 0"),
    ("cell:\n  users: 2.5\n", "cell.users", "valid integer"),
    ("cell:\n  users: true\n", "cell.users", "valid integer"),
    ("channel:\n  shadowing_sigma_db: -1\n", "channel.shadowing_sigma_db", "greater than or equal to 0"),
    ("channel:\n  noise_psd_dbm_per_hz: .nan\n", "channel.noise_psd_dbm_per_hz", "finite number"),
    ("radio:\n  max_tx_power_dbm: .inf\n", "radio.max_tx_power_dbm", "finite number"),
    ("cell:\n  side_m: '500'\n", "cell.side_m", "valid number"),
    ("optimizer:\n  fixed_eta: 1.5\n", "optimizer.fixed_eta", "less than 1"),
    ("optimizer:\n  fixed_eta: 0\n", "optimizer.fixed_eta", "greater than 0"),
    ("scheme: fedavg\n", "scheme", "'sfl', 'splitllm', 'fl' or 'sl'"),
    ("cell: 5\n", "cell", "must be a mapping"),
    ("theory:\n  strong_convexity_gamma: 0.2\n  xi: 0.5\n", "theory", "xi=0.5 must be <= gamma/L"),
    ("theory:\n  lipschitz_L: 25\n  strong_convexity_gamma: 5\n", "theory", "delta=0.1 must be < 2/L"),
    ("compute:\n  cycles_per_sample_range: [3e4, 1e4]\n", "compute", "must be [min, max]"),
    ("scheme: splitllm\n", "(scenario)", "needs cell.edge_servers >= 1"),
    ("cell:\n  base_station_xy_m: [0, 0, 0]\n", "cell.base_station_xy_m", "at most 2 items"),
    ("cell:\n  user_placement: fixed\n", "cell", "needs user_positions_m"),
    ("workload:\n  dataset_samples: -5\n", "workload.dataset_samples", "greater than 0"),
    ("optimizer:\n  strategies: [proposed, XX]\n", "optimizer.strategies[1]", "'proposed', 'EB', 'FE', 'BA', 'proposed_replan' or 'robust'"),
]


@pytest.mark.parametrize("text,field,message", MALFORMED, ids=[f"case{i}" for i in range(len(MALFORMED))])
def test_malformed_scenarios_give_one_clean_line_and_exit_2(tmp_path, cli, text, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("validate", path)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err
    assert str(path) in line
    if field:
        assert f": {field}: " in line, line
    assert message in line, line


def test_value_is_named_in_the_message(tmp_path, cli):
    path = tmp_path / "bad.yaml"
    path.write_text("radio:\n  uplink_main_bandwidth_hz: -20e6\n", encoding="utf-8")
    _, _, err = cli("validate", path)
    assert "(got -20000000.0)" in err


def test_several_problems_several_lines_across_files(tmp_path, cli):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("cell:\n  users: 0\nradio:\n  max_tx_power_dbm: x\n", encoding="utf-8")
    b.write_text("seed: -1\n", encoding="utf-8")
    code, out, err = cli("validate", a, b, SHIPPED[0])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert sum(str(a) in line for line in lines) == 2 and sum(str(b) in line for line in lines) == 1
    assert f"{SHIPPED[0]}: ok" in out


def test_missing_file_is_a_clean_error(cli, tmp_path):
    code, _, err = cli("validate", tmp_path / "nope.yaml")
    assert code == 2 and "no such file" in err and "Traceback" not in err


def test_error_lists_all_problems_not_only_the_first():
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"cell": {"users": 0, "side_m": -1}, "seed": "x"})
    fields = {p.field for p in info.value.problems}
    assert fields == {"cell.users", "cell.side_m", "seed"}


def test_scenario_is_immutable():
    s = Scenario()
    with pytest.raises(Exception):
        s.cell.users = 3  # type: ignore[misc]


def test_shipped_files_are_package_data():
    assert Path(SCENARIO_DIR, "fedsllm_fig2.yaml").is_file()


@pytest.mark.parametrize("value, expected", [(6e4, 60000), (60000.0, 60000), (600, 600)])
def test_a_count_written_as_a_whole_number_float_is_that_integer(value, expected):
    """issue 34, item 12: `dataset_samples: 6e4` is 60,000 samples, not 'not a valid integer'."""
    from splitsim.scenarios import parse_scenario

    scenario = parse_scenario({"name": "x", "workload": {"dataset_samples": value}, "cell": {"users": 8.0}})
    assert scenario.workload.dataset_samples == expected and isinstance(scenario.workload.dataset_samples, int)
    assert scenario.cell.users == 8 and isinstance(scenario.cell.users, int)


@pytest.mark.parametrize("value", [8.5, "8", True, float("inf")])
def test_a_count_that_is_not_a_whole_number_is_still_refused(value):
    from splitsim.scenarios import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match="cell.users"):
        parse_scenario({"name": "x", "cell": {"users": value}})


def test_an_implausible_accuracy_target_is_a_warning(tmp_path, cli):
    """issue 34, item 12: epsilon0 = 1e-300 is legal but asks for ~100x FedsLLM's rounds."""
    path = tmp_path / "eps.yaml"
    path.write_text("name: eps\ntheory: {epsilon0: 1.0e-300}\n")
    code, _, err = cli("validate", path)
    assert code == 0 and "theory.epsilon0" in err and "plausible" in err


def _laughs(levels: int = 9) -> str:
    """A 'billion laughs' YAML: each level an alias list of nine of the previous (9^levels values)."""
    text = "name: bomb\nworkload: {}\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels):
        text += f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize("text, words", [
    (_laughs(), "expands to more than"),
    ("name: deep\nmodel: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("name: deep\nmodel: " + "[" * 100 + "]" * 100 + "\n", "nested more than 64 levels"),
])
def test_a_yaml_bomb_or_deep_nesting_is_one_line_and_exit_2(tmp_path, cli, text, words):
    """issue 34, item 11: aliases are counted, not expanded, before anything copies them; a file
    nested past the parser's recursion is refused, not a traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = cli("validate", path)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
