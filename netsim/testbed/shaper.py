"""An application-level token bucket: a link's rate enforced on the sending side of a TCP socket.

The bucket holds up to `burst_bytes` of credit and refills at rate_bps / 8 bytes per second; sending
n bytes waits until n bytes of credit are there. Over a transfer much longer than the burst the
sender's goodput is the configured rate (the first `burst_bytes` leave at once), whatever the socket
below could carry — which is loopback's gigabytes per second, so the bucket is the bottleneck. A
per-message latency (`latency_s`, the simulator's backhaul latency, or a radio link's scheduling
delay) is added before a message's first byte.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

CHUNK_BYTES = 16 * 1024
"""Bytes handed to the socket per send: small against any transfer worth shaping, large against
the per-call overhead (a few microseconds), and the default burst."""

BURST_SECONDS = 0.05
"""The sender's bucket holds up to this much of its rate (at least a chunk): a sender thread that the
OS schedules late (a busy host) keeps the credit it earned meanwhile instead of losing it above a
one-chunk cap, so the long-run rate stays the configured one."""

ETHERNET_FRAME_BYTES = 1514  # a 1500-byte MTU frame with its 14-byte Ethernet header
TCP_PAYLOAD_BYTES = 1448  # its TCP payload: 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps option)


def payload_rate_scale(frame_bytes: int = ETHERNET_FRAME_BYTES, payload_bytes: int = TCP_PAYLOAD_BYTES) -> float:
    """What a kernel shaper's rate (which counts whole frames) must be multiplied by so that the TCP
    payload moves at the target rate: a full frame carries `payload_bytes` of payload (RFC 7323
    timestamps on, as Linux sets them by default)."""
    return frame_bytes / payload_bytes


class TokenBucket:
    """Credit for `rate_bps` bits per second, at most `burst_bytes` at once (starts full)."""

    def __init__(self, rate_bps: float, burst_bytes: int = CHUNK_BYTES, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not rate_bps > 0:
            raise ValueError(f"rate_bps must be positive, got {rate_bps}")
        if burst_bytes < 1:
            raise ValueError(f"burst_bytes must be at least 1, got {burst_bytes}")
        self.bytes_per_s = rate_bps / 8.0
        self.burst = float(burst_bytes)
        self.clock, self.sleep = clock, sleep
        self.tokens = self.burst
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.bytes_per_s)
        self.stamp = now

    def take(self, nbytes: int) -> float:
        """Wait until `nbytes` (at most the burst) of credit are there and spend them; the seconds waited."""
        if nbytes > self.burst:
            raise ValueError(f"{nbytes} bytes is more than the burst ({self.burst:.0f}): send it in chunks")
        self._refill()
        waited = 0.0
        if self.tokens < nbytes:
            waited = (nbytes - self.tokens) / self.bytes_per_s
            self.sleep(waited)
            self._refill()
            # a sleep that returns a little early leaves a small debt, paid by the next chunk
        self.tokens -= nbytes
        return waited


class ShapedSender:
    """Sends on a socket through a token bucket, chunk by chunk, after each message's latency."""

    def __init__(self, sock: socket.socket, rate_bps: float, latency_s: float = 0.0, chunk_bytes: int = CHUNK_BYTES,
                 burst_s: float = BURST_SECONDS):
        if latency_s < 0:
            raise ValueError(f"latency_s must not be negative, got {latency_s}")
        self.sock, self.latency_s, self.chunk = sock, latency_s, chunk_bytes
        self.bucket = TokenBucket(rate_bps, burst_bytes=max(chunk_bytes, int(rate_bps / 8 * burst_s)))

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """One message: the latency, then its bytes at the rate."""
        self.sendall_parts([data])

    def sendall_parts(self, parts) -> None:
        """One message made of several buffers (a header and tensors): the latency once, then every
        buffer's bytes at the rate, in order."""
        if self.latency_s:
            time.sleep(self.latency_s)
        for data in parts:
            view = memoryview(data).cast("B")
            for start in range(0, len(view), self.chunk):
                piece = view[start:start + self.chunk]
                self.bucket.take(len(piece))
                self.sock.sendall(piece)
