"""Fixtures shared by the tests."""

from __future__ import annotations

import os

import pytest

from helpers import run_cli


if os.environ.get("PYTEST_XDIST_WORKER"):  # two test processes on two cores: one thread each, not two
    import torch

    torch.set_num_threads(1)

TIMED_MODULES = ("test_emulation.py", "test_testbed.py")
"""Modules whose tests time real processes and links: marked `testbed`, so that scripts/test.sh can run
them alone after the rest (which it runs on two processes)."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in TIMED_MODULES:
            item.add_marker(pytest.mark.testbed)


@pytest.fixture
def cli(capsys):
    """Call as cli("validate", path, ...) -> (exit status, stdout, stderr)."""
    return lambda *args: run_cli(list(args), capsys)


@pytest.fixture(autouse=True, scope="session")
def _private_profile_cache(tmp_path_factory):
    """Profiles measured by the tests go to a temporary cache, not the user's ~/.cache."""
    import os

    old = os.environ.get("SPLITSIM_CACHE_DIR")
    os.environ["SPLITSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("splitsim-cache"))
    yield
    if old is None:
        os.environ.pop("SPLITSIM_CACHE_DIR", None)
    else:
        os.environ["SPLITSIM_CACHE_DIR"] = old
