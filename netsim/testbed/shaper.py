"""The application-level shaper: a link's rate enforced on the sending side of a TCP socket.

`ShapedSender` paces each message on its own schedule (see the class), so its goodput is the
configured rate whatever the socket below could carry — loopback's gigabytes per second, so the
pacing is the bottleneck. A per-message latency (`latency_s`: the simulator's backhaul latency) is
added before a message's first byte. Tested to deliver the rate within 2 % (tests/test_testbed.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

CHUNK_BYTES = 16 * 1024
"""Bytes handed to the socket per send: small against any transfer worth shaping, large against
the per-call overhead (a few microseconds)."""

ETHERNET_FRAME_BYTES = 1514  # a 1500-byte MTU frame with its 14-byte Ethernet header
TCP_PAYLOAD_BYTES = 1448  # its TCP payload: 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps option)


def payload_rate_scale(frame_bytes: int = ETHERNET_FRAME_BYTES, payload_bytes: int = TCP_PAYLOAD_BYTES) -> float:
    """What a kernel shaper's rate (which counts whole frames) must be multiplied by so that the TCP
    payload moves at the target rate: a full frame carries `payload_bytes` of payload (RFC 7323
    timestamps on, as Linux sets them by default)."""
    return frame_bytes / payload_bytes


class ShapedSender:
    """Sends on a socket at a link's rate, message by message, after each message's latency.

    A message's bytes are paced on its own schedule: the chunk that brings the message to n bytes
    leaves at t0 + n·8 / rate_bps, t0 being the end of the latency. So a message of n bytes leaves
    in exactly n·8 / rate_bps seconds — no credit saved up while the link was idle (a radio
    sub-band does not lend the next message its idle time), and a chunk the OS sends late is
    caught up by the next ones (the schedule, not the previous send, sets each deadline). With
    `rate_bps` infinite the bytes go at the socket's speed."""

    def __init__(self, sock: socket.socket, rate_bps: float, latency_s: float = 0.0, chunk_bytes: int = CHUNK_BYTES,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if latency_s < 0:
            raise ValueError(f"latency_s must not be negative, got {latency_s}")
        if not rate_bps > 0:
            raise ValueError(f"rate_bps must be positive, got {rate_bps}")
        self.sock, self.rate_bps, self.latency_s, self.chunk = sock, float(rate_bps), latency_s, chunk_bytes
        self.clock, self.sleep = clock, sleep

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """One message: the latency, then its bytes at the rate."""
        self.sendall_parts([data])

    def sendall_parts(self, parts) -> None:
        """One message made of several buffers (a header and tensors): the latency once, then every
        buffer's bytes at the rate, in order, on the message's schedule."""
        if self.latency_s:
            self.sleep(self.latency_s)
        start, sent = self.clock(), 0
        bytes_per_s = self.rate_bps / 8.0
        for data in parts:
            view = memoryview(data).cast("B")
            for offset in range(0, len(view), self.chunk):
                piece = view[offset:offset + self.chunk]
                sent += len(piece)
                if bytes_per_s != float("inf"):
                    wait = start + sent / bytes_per_s - self.clock()
                    if wait > 0:
                        self.sleep(wait)
                self.sock.sendall(piece)
