"""Is a Hugging Face hub id usable from here? Answered before any work, in a few seconds at most.

A hub id (`org/name`) is usable when its config.json is in the local hub cache (what transformers
reads offline), or when the hub answers. Offline (HF_HUB_OFFLINE=1, or the host does not resolve or
connect within `PROBE_TIMEOUT_S`) and not cached is one line at `validate`, not a minute of
retries inside `profile`.
"""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 3.0


def _offline_flag() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cached_config(repo_id: str) -> str | None:
    """Path of the id's config.json in the local hub cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return found if isinstance(found, str) else None


def hub_reachable(timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub's HTTPS port opens within `timeout_s` (no request is sent)."""
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


@functools.lru_cache(maxsize=64)
def hub_problem(repo_id: str) -> str | None:
    """Why `repo_id` cannot be loaded from here, or None when it can (cached, or the hub answers)."""
    if cached_config(repo_id) is not None:
        return None
    if _offline_flag():
        return ("not in the local hub cache and HF_HUB_OFFLINE is set; download it once online, or use a "
                "preset or a local folder")
    if not hub_reachable():
        return (f"not in the local hub cache, and {HUB_HOST} cannot be reached from this machine (no connection "
                f"within {PROBE_TIMEOUT_S:g} s); use a preset (weights: none for the shapes alone) or a local folder")
    return None
