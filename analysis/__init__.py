"""Orchestration: realise scenarios, run simulations and studies, write tables, plots and reports."""

from .world import World, realise

__all__ = ["World", "realise"]
