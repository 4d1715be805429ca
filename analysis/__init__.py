"""Orchestration: realise scenarios, run simulations and studies, write tables, plots and reports.

Submodules are imported on first use, so that the CLI starts fast (`splitsim --help`, `validate`).
"""

__all__ = ["World", "realise"]


def __getattr__(name: str):
    if name in __all__:
        from . import world

        return getattr(world, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
