"""The measured testbed's network (issue #24, in progress): links shaped to the simulator's rates.

Two shapers realise a link's rate for real traffic between device processes:

- `shaper.TokenBucket` / `shaper.ShapedSender`: an application-level token bucket on the sending
  socket (works anywhere, on loopback, without privileges);
- `kernel.KernelLinks`: one network namespace per device, veth pairs and a `tc` token-bucket qdisc
  on each end (needs root); `netem` may be missing, so latency is added by the application.

Both are tested to deliver the configured rate within 2 % on a long transfer (tests/test_testbed.py).
`wire` is the message format: tensors as raw bytes behind a JSON header, its overhead stated.

Not yet here (the rest of #24): the device processes, the protocols' order of work over these
links, the measured event log and its comparison with the simulator (`splitsim emulate`).
"""

from .shaper import ShapedSender, payload_rate_scale

__all__ = ["ShapedSender", "payload_rate_scale"]
