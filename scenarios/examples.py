"""The scenarios shipped with splitsim, reachable from an installed package (no clone needed).

    splitsim.examples()                   # {name: path} of every shipped scenario
    splitsim.example_path("fedsllm_fig2") # its YAML file, to load, copy or run
    splitsim example fedsllm_fig2 --out DIR    # the same from the shell: runs it as `splitsim run`
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

SCENARIO_DIR = Path(__file__).resolve().parent
"""Folder of the shipped scenario YAML files (inside the installed package)."""


def examples() -> dict[str, Path]:
    """Every shipped scenario by name (its file's stem), sorted."""
    return {path.stem: path for path in sorted(SCENARIO_DIR.glob("*.yaml"))}


def example_path(name: str) -> Path:
    """The shipped scenario `name` ("fedsllm_fig2" or "fedsllm_fig2.yaml"); an InputError naming the
    ones there are otherwise."""
    shipped = examples()
    stem = Path(str(name)).name.removesuffix(".yaml")
    if stem not in shipped:
        raise InputError(f"no shipped scenario named '{name}'; there are: {', '.join(shipped)}", field="example",
                         value=name)
    return shipped[stem]
