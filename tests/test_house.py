"""The house: no import circles, output folders that keep a user's files, guards on huge sweeps."""

from __future__ import annotations

import ast
import logging

import pytest

from helpers import REPO

PACKAGES = ("splitsim", "scenarios", "netsim", "learning", "optimizer", "analysis")


def _module_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at any depth of the file, lazily or not), by their
    installed names (netsim/engine.py is splitsim.netsim.engine)."""
    files = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[0] != "splitsim":
                parts = ["splitsim", *parts]
            files[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - (0 if is_package else 1)]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _part(module: str) -> str:
    """The project part a module belongs to: scenarios, netsim, ...; 'splitsim' for the API."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "splitsim"


def test_no_module_of_the_project_imports_itself_through_others():
    graph = _module_graph()
    assert len(graph) > 50  # the walk found the packages
    assert sum(map(len, graph.values())) > 300  # and their imports, by the names they are imported by
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_point_one_way():
    """scenarios imports no other package; netsim, optimizer, learning only scenarios; none imports splitsim."""
    allowed = {"scenarios": set(), "netsim": {"scenarios"}, "optimizer": {"scenarios"}, "learning": {"scenarios"},
               "analysis": {"scenarios", "netsim", "optimizer", "learning"}}
    graph = _module_graph()
    assert _part("splitsim.netsim.engine") == "netsim" and _part("splitsim.api") == "splitsim"
    assert any(_part(t) == "scenarios" for t in graph["splitsim.netsim.engine"])
    for module, targets in graph.items():
        package = _part(module)
        if package not in allowed:
            continue
        reached = {_part(t) for t in targets} - {package}
        assert reached <= allowed[package], (module, reached - allowed[package])


@pytest.mark.slow
def test_a_rerun_deletes_only_what_splitsim_wrote(tmp_path, cli):
    scenario = REPO / "scenarios" / "tiny_sfl.yaml"
    out = tmp_path / "out"
    assert cli("simulate", scenario, "--out", out)[0] == 0
    written = sorted(p.name for p in out.iterdir())
    (out / "my_notes.txt").write_text("what I saw")
    (out / "mine").mkdir()
    (out / "mine" / "figure.svg").write_text("<svg/>")
    assert cli("simulate", scenario, "--out", out)[0] == 0
    assert (out / "my_notes.txt").read_text() == "what I saw"
    assert (out / "mine" / "figure.svg").is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(written + ["my_notes.txt", "mine"])
    # and --overwrite with another command: the user's files stay there too
    code, _, err = cli("optimize", scenario, "--out", out, "--overwrite")
    assert code == 0, err
    assert (out / "my_notes.txt").is_file() and not (out / "summary.json").exists()


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path, cli):
    values = ",".join(str(10 + i) for i in range(101))
    code, _, err = cli("sweep", REPO / "scenarios" / "tiny_sfl.yaml", "--set", f"cell.users={values}",
                       "--set", f"theory.epsilon0={','.join(str(0.01 + i / 1000) for i in range(100))}",
                       "--out", tmp_path / "s")
    assert code == 2
    assert "10,100 points" in err and "--max-points" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
    code, _, err = cli("sweep", REPO / "scenarios" / "tiny_sfl.yaml", "--set", "cell.users=4", "--max-points", "0",
                       "--out", tmp_path / "s")
    assert code == 2 and err.strip() == "error: --max-points: must be at least 1 (got 0)"


@pytest.mark.slow
def test_a_sweep_without_a_terminal_logs_its_progress(tmp_path, caplog):
    import splitsim

    with caplog.at_level(logging.INFO, logger="splitsim.analysis"):
        splitsim.sweep(REPO / "scenarios" / "tiny_sfl.yaml", {"theory.epsilon0": [0.1, 0.2, 0.3]}, tmp_path / "s",
                       workers=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep: ")]
    assert lines and lines[-1].startswith("sweep: 3 of 3 points")


def test_a_cost_refusal_names_the_scenario_file(tmp_path, cli):
    path = tmp_path / "big.yaml"
    path.write_text("cell:\n  users: 50\nsimulation:\n  max_events: 1000\n")
    code, _, err = cli("simulate", path, "--out", tmp_path / "o")
    assert code == 2
    assert err.startswith(f"error: {path}: simulation.max_events:"), err


@pytest.mark.parametrize("command", ["run", "simulate"])
def test_bad_input_costs_run_no_more_than_validate(tmp_path, cli, command):
    """The same one line from `validate` and the command, before the command writes anything."""
    path = tmp_path / "bad.yaml"
    path.write_text("cell:\n  users: 50\nsimulation:\n  max_events: 1000\n")
    _, _, from_validate = cli("validate", path)
    code, _, from_command = cli(command, path, "--out", tmp_path / command)
    assert code == 2 and from_command == from_validate
    assert not (tmp_path / command).exists()


def test_the_docs_sweep_columns_exist_in_a_fig2_sweep(tmp_path):
    """The sweeps page's snippet selects delay_proposed_s and delay_BA_s: every study's headline names."""
    import splitsim

    table = splitsim.sweep(REPO / "scenarios" / "fedsllm_fig2.yaml", {"cell.users": [4, 6]}, tmp_path / "s", workers=1)
    assert table[["cell.users", "delay_proposed_s", "delay_BA_s"]].notna().all().all()
    assert (table["delay_proposed_s"] < table["delay_BA_s"]).all()


def test_sweep_labels_show_units_not_raw_numbers():
    from splitsim.analysis.plots import field_label, field_value

    assert field_label("radio.uplink_main_bandwidth_hz") == ("uplink main bandwidth", 1e6, "MHz")
    assert field_value("radio.uplink_main_bandwidth_hz", 1e7) == "10 MHz"
    assert field_value("cell.users", 1000) == "1,000"


def test_a_hub_id_that_cannot_be_loaded_fails_validate_in_one_line(tmp_path, cli, monkeypatch):
    """Offline and not cached: one line at validate, not a minute of retries inside profile (#22.13).
    No test touches the network: the probe is replaced where it would connect."""
    import splitsim.scenarios.hub as hub

    path = tmp_path / "hub.yaml"
    path.write_text("model:\n  source: some-org/some-model\n  cut_layers: [2]\n  sequence_length: 64\n")
    hub.hub_problem.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = cli("validate", path)
    assert code == 2 and "HF_HUB_OFFLINE is set" in err and len(err.strip().splitlines()) == 1

    hub.hub_problem.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub.socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("no route")))
    code, _, err = cli("validate", path)
    assert code == 2 and "cannot be reached" in err

    hub.hub_problem.cache_clear()
    monkeypatch.setattr(hub, "cached_config", lambda repo: "/cache/config.json")  # as if downloaded before
    assert hub.hub_problem("some-org/some-model") is None
    hub.hub_problem.cache_clear()


def test_remeasure_replaces_a_cached_profile_and_every_profile_records_the_hosts_load(tmp_path, cli):
    import json

    path = tmp_path / "p.yaml"
    path.write_text("model:\n  source: bert-tiny\n  cut_layers: [2]\n  sequence_length: 16\n  batch_size: 2\n")
    assert cli("profile", path, "--out", tmp_path / "a")[0] == 0
    first = json.loads((tmp_path / "a" / "profile.json").read_text())["profile"]["environment"]
    assert "load_per_cpu" in first
    code, _, err = cli("profile", path, "--out", tmp_path / "b")
    assert code == 0 and "read from the cache" in err
    code, _, err = cli("profile", path, "--out", tmp_path / "c", "--remeasure")
    assert code == 0 and "read from the cache" not in err and "profiled bert-tiny" in err
    code, _, err = cli("profile", path, "--out", tmp_path / "d")
    again = json.loads((tmp_path / "d" / "profile.json").read_text())["profile"]["environment"]
    assert again["measured_utc"] >= first["measured_utc"] and "read from the cache" in err


@pytest.mark.parametrize("text,field", [
    ("radio:\n  uplink_main_bandwidth_hz: 20\n", "radio.uplink_main_bandwidth_hz"),  # MHz meant
    ("cell:\n  side_m: 0.5\n", "cell.side_m"),  # km meant
    ("compute:\n  user_cpu_hz: 2\n", "compute.user_cpu_hz"),  # GHz meant
])
def test_a_unit_slip_warns_at_validate_and_stops_a_sweep(tmp_path, cli, text, field):
    path = tmp_path / "slip.yaml"
    path.write_text(text)
    code, _, err = cli("validate", path)
    # a warning; or, where the slip makes the run too big to finish (2 Hz CPUs), an error beside it
    assert f"{path}: {field}:" in err and "unit slip" in err
    assert code == (2 if "user_cpu_hz" in field else 0)
    value = text.split(":")[-1].strip()
    code, _, err = cli("sweep", path, "--set", "theory.epsilon0=0.1,0.2", "--out", tmp_path / "s")
    assert code == 2 and f"{field}: {value}" in err and "unit slip" in err
    assert not (tmp_path / "s").exists()


def test_the_api_remeasures_a_profile_as_the_command_does(tmp_path, caplog):
    import splitsim

    scenario = splitsim.parse_scenario({"model": {"source": "bert-tiny", "cut_layers": [1], "sequence_length": 16,
                                                  "batch_size": 2}})
    splitsim.profile(scenario)  # measured, or read from the cache
    with caplog.at_level(logging.INFO, logger="splitsim.learning"):
        again = splitsim.profile(scenario, remeasure=True)
    assert any("profiled bert-tiny" in r.getMessage() for r in caplog.records)
    assert again.environment["load_per_cpu"] is not None
    stored = tmp_path / "p.json"
    again.save(stored)
    with pytest.raises(splitsim.InputError, match="model.profile_path"):
        splitsim.profile(splitsim.with_changes(scenario, {"model.profile_path": str(stored)}), remeasure=True)


def test_a_runs_resolved_scenario_validates_without_a_warning_per_field(tmp_path, cli):
    """scenario.resolved.yaml writes every field; the ones at their default change nothing and
    are not reported as having no effect (a non-default one still is: test_trust)."""
    path = tmp_path / "s.yaml"
    path.write_text("cell: {users: 4}\ntheory: {epsilon0: 0.2}\nstudy: {kind: latency_vs_power, "
                    "tx_power_dbm: [0.0, 10.0]}\n")
    assert cli("run", path, "--out", tmp_path / "o")[0] == 0
    code, _, err = cli("validate", tmp_path / "o" / "scenario.resolved.yaml")
    assert code == 0 and "warning" not in err, err
    path.write_text("cell: {users: 4}\nradio: {max_tx_power_dbm: 10.0}\nstudy: {kind: latency_vs_power}\n")
    assert "warning" not in cli("validate", path)[2]  # the default value: no effect either way
