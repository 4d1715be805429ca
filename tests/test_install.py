"""The distribution as a user installs it: a wheel built from this tree, installed into a fresh
environment, used from a folder whose own `analysis.py` and `optimizer.py` would shadow a generic
top-level package (issue 32, item 1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow

PARTS = ("analysis", "learning", "netsim", "optimizer", "scenarios")


def _run(args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from a copy of this tree (the build writes build/ and egg-info,
    which must not land in the checkout)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to copy the tracked tree")
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    source = tmp_path_factory.mktemp("source")
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, source], source, dict(os.environ))
    (built,) = dist.glob("splitsim-*.whl")
    return built


def test_the_wheel_holds_every_subpackage_and_the_data_under_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"splitsim"}
    packages = {str(Path(name).parent) for name in names if name.endswith("/__init__.py")}
    # every package folder of the tree (found on disk, not listed by hand) is in the wheel
    on_disk = {f"splitsim/{init.parent.relative_to(REPO)}" for part in PARTS for init in (REPO / part).rglob("__init__.py")}
    assert on_disk <= packages, on_disk - packages
    for needed in ("splitsim/analysis/studies", "splitsim/analysis/testbed", "splitsim/netsim/testbed",
                   "splitsim/optimizer/energy", "splitsim/netsim/protocols"):
        assert needed in packages
    shipped = {f"splitsim/scenarios/{p.relative_to(REPO / 'scenarios')}" for p in (REPO / "scenarios").rglob("*")
               if p.is_file() and p.suffix in (".yaml", ".json", ".csv", ".md")}
    assert shipped <= set(names), shipped - set(names)


def test_an_installed_wheel_runs_from_a_folder_that_shadows_generic_names(wheel, tmp_path):
    """Installed into a fresh venv (its dependencies reached through this environment's
    site-packages, added as a plain path: no editable finder, no source tree), then used from a
    folder holding analysis.py and optimizer.py that fail on import."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         tmp_path, env)

    work = tmp_path / "notebooks"
    work.mkdir()
    for name in ("analysis", "optimizer", "netsim"):
        (work / f"{name}.py").write_text(f"raise ImportError('the folder\\'s own {name}.py was imported')\n")
    probe = _run([python, "-c", "import json, splitsim, splitsim.analysis.studies, splitsim.netsim.testbed, "
                  "splitsim.optimizer.energy; print(json.dumps({'file': splitsim.__file__, "
                  "'example': str(splitsim.example_path('tiny_sfl')), 'version': splitsim.__version__}))"], work, env)
    found = json.loads(probe.stdout)
    assert Path(found["file"]).is_relative_to(venv) and Path(found["example"]).is_relative_to(venv)
    assert found["version"] == "0.1.0" or found["version"][0].isdigit()

    assert "validate" in _run(["splitsim", "--help"], work, env).stdout
    ran = _run(["splitsim", "run", found["example"], "--out", work / "out"], work, env)
    assert "proposed" in ran.stdout
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["scenario"] == "tiny_sfl"
    listed = _run(["splitsim", "example", "--list"], work, env).stdout
    assert "fedsllm_fig2" in listed and str(venv) in listed
    _run(["splitsim", "example", "tiny_sfl", "--out", work / "out2"], work, env)
    assert json.loads((work / "out2" / "summary.json").read_text())["scenario"] == "tiny_sfl"
