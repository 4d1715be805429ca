"""The documentation site builds with every warning an error, and the README stays a short,
working entry point (issue 32, item 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import REPO


def test_the_site_builds_strictly_with_the_generated_reference(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reference = (site / "scenario-reference" / "index.html").read_text()
    # generated from the schema: a field from each end of it, with its unit and bound
    assert "cell.users" in reference and "radio.uplink_main_bandwidth_hz" in reference
    assert "emulation.user_cpu_share" in reference and "Hz" in reference
    api = (site / "api" / "index.html").read_text()
    assert "StrategyProblem" in api and "user_delay_s" in api and "with_changes" in api
    for page in ("validation", "custom-strategy", "studies/robustness", "studies/emulation"):
        assert (site / page / "index.html").exists()


def test_the_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) < 15_000
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", text):
        if target.startswith(("http://", "https://")):
            continue
        assert (REPO / target).exists(), target
    assert "bash scripts/setup.sh" in text and "bash scripts/test.sh" in text


def test_the_readmes_python_snippet_runs():
    text = (REPO / "README.md").read_text()
    code = text[text.index("```python") + len("```python"):].split("```")[0]
    namespace: dict = {}
    code = code.replace("splitsim.allocation_table(", "table = splitsim.allocation_table(", 1)
    exec(compile(code, "README.md", "exec"), namespace)
    table = namespace["table"]
    assert set(table.index) == {"proposed", "EB", "FE", "BA"}
    assert table.loc["proposed", "T_s"] < table.loc["BA", "T_s"]


@pytest.mark.slow
def test_the_llama8b_phone_cut_numbers_in_the_docs_are_what_the_study_gives(tmp_path, cli):
    """Issue 34, item 15: the cut-layer page's Llama-3.1-8B numbers (which cuts fit, the delays at
    the ends of that window, the A100's usable memory) are what `splitsim run` gives now."""
    import pandas as pd

    code, _, err = cli("run", REPO / "scenarios" / "llama8b_phone_cut.yaml", "--out", tmp_path / "out",
                       "--no-progress")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "cut_layer.csv")
    fits = table[table["feasible"]]
    page = (REPO / "docs" / "studies" / "cut_layer.md").read_text()
    window = page.split("<!-- llama8b-fit -->")[1].split("<!-- /llama8b-fit -->")[0]
    assert window == f"{fits['cut'].min()}–{fits['cut'].max()}"
    delays = page.split("<!-- llama8b-delays -->")[1].split("<!-- /llama8b-delays -->")[0]
    first, last = fits.iloc[0], fits.iloc[-1]
    assert delays == (f"{first['T_proposed_s']:,.0f} s at cut {first['cut']} to {last['T_proposed_s']:,.0f} s at cut "
                      f"{last['cut']}")
    usable = table.loc[~table["feasible"], "infeasible_reason"].str.extract(r"a100: ([\d.]+) of")[0].dropna().iloc[0]
    assert f"{usable} of the A100's 80" in page
