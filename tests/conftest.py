"""Fixtures shared by the tests."""

from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.fixture
def cli(capsys):
    """Call as cli("validate", path, ...) -> (exit status, stdout, stderr)."""
    return lambda *args: run_cli(list(args), capsys)
