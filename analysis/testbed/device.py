"""A testbed device process: `python -m splitsim.analysis.testbed.device SPEC CONTROL` (netsim.testbed.launch
starts it; netsim.testbed.device.main runs it with the roles of analysis/testbed/roles.py)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from splitsim.netsim.testbed.device import main

    from .roles import ROLES

    main(sys.argv[1], sys.argv[2], ROLES)
