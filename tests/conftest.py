"""Fixtures shared by the tests."""

from __future__ import annotations

import pytest

from helpers import run_cli


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
