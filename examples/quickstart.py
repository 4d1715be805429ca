# %% [markdown]
# # splitsim from Python
#
# A percent-format script (open it in Jupyter with jupytext, or run it with `python`): load the
# FedsLLM Fig. 2 scenario, shrink it, optimise the bandwidth and eta, simulate, run the study and a
# small sweep, and look at the pandas tables each step returns. The test suite runs this file.

# %%
from pathlib import Path
import tempfile

import splitsim

OUT = Path(tempfile.mkdtemp(prefix="splitsim-example-"))

# %% Load a scenario and change it: every change is validated as a scenario file is.
scenario = splitsim.load_scenario(splitsim.example_path("fedsllm_fig2"))  # shipped; or your own YAML
scenario = splitsim.with_changes(scenario, {"cell.users": 10, "theory.epsilon0": 0.1,
                                            "study.tx_power_dbm": [0.0, 10.0, 20.0]})
try:
    splitsim.with_changes(scenario, {"cell.users": 0})
except splitsim.ScenarioError as err:
    print("rejected:", err)

# %% Realise the cell (one channel draw) and solve FedsLLM problem (17) for every strategy.
world = splitsim.realise(scenario)
allocations = splitsim.optimise(world)
table = splitsim.allocation_table(allocations)
print(table)

# %% Simulate the proposed allocation with SimPy: under the paper's assumptions it equals the optimizer's T.
result = splitsim.simulate(world, allocations["proposed"])
print(f"simulated {result.total_delay_s:.6g} s vs optimizer {allocations['proposed'].T_s:.6g} s")
events = result.events_frame()
print(events.groupby("category")["duration_s"].sum())

# %% Run the scenario's study (latency vs transmit power) and read its tables back.
study = splitsim.run_study(scenario, OUT / "study")
print(study.tables["latency_vs_power"].pivot(index="tx_power_dbm", columns="strategy", values="T_s"))
print("figures:", [p.name for p in study.figures])

# %% A sweep over the number of users: one row per point with every strategy's mean delay.
sweep_file = OUT / "small.yaml"
sweep_file.write_text("name: small\ncell: {users: 10}\ntheory: {epsilon0: 0.1}\n"
                      "study: {kind: simulate}\nsimulation: {record_events: false}\n")
results = splitsim.sweep(sweep_file, {"cell.users": [5, 10]}, OUT / "sweep", workers=1)
print(results[["cell.users", "status", "delay_proposed_s", "delay_BA_s"]])
