"""The measured testbed (issue #24): real device processes over links shaped to the simulator's rates.

Two shapers realise a link's rate for real traffic between device processes:

- `shaper.ShapedSender`: the application-level shaper, each message paced on its own schedule on
  the sending socket (works anywhere, on loopback, without privileges);
- `kernel.KernelLinks`: one network namespace per device, veth pairs and a `tc` token-bucket qdisc
  on each end (needs root); `netem` may be missing, so latency is added by the application.

Both are tested to deliver the configured rate within 2 % on a long transfer (tests/test_testbed.py).
`wire` is the message format: tensors as raw bytes behind a JSON header, its overhead stated.

`device` is one device process's side (its sockets, shaped senders, measured events, control
channel), `launch` starts the devices, calibrates and lets them go, `plans` builds the simulator's
plan for a testbed (rates per link, calibrated compute) and `compare` sets measured against
predicted. What each device does is analysis/testbed/roles.py; `splitsim emulate` is the study
analysis/studies/emulation.py.
"""

from .shaper import ShapedSender, payload_rate_scale

__all__ = ["ShapedSender", "payload_rate_scale"]
