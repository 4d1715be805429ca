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
