"""A receiver that times a transfer: what the shaper tests (and a user checking a link) measure.

`receive_all(conn)` reads a connection to its end and returns the bytes, the first read's bytes and
the times of the first and last byte; `goodput_bps` is the payload rate between them (the first
read excluded). `python -m netsim.testbed.probe HOST PORT` listens once, prints "ready", then the
three numbers (bytes, first read's bytes, seconds between first and last byte) — run inside a
network namespace by the kernel shaper's test.
"""

from __future__ import annotations

import socket
import sys
import time


def receive_all(conn: socket.socket) -> dict:
    first = last = None
    total = first_bytes = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        now = time.perf_counter()
        if first is None:
            first, first_bytes = now, len(data)
        last = now
        total += len(data)
    return {"total": total, "first_bytes": first_bytes, "first": first, "last": last}


def goodput_bps(result: dict) -> float:
    """Payload bits per second between the first and the last byte (the first read's bytes excluded)."""
    return 8 * (result["total"] - result["first_bytes"]) / (result["last"] - result["first"])


def main(host: str, port: int) -> None:
    server = socket.create_server((host, port))
    print("ready", flush=True)
    conn, _ = server.accept()
    with conn:
        result = receive_all(conn)
    print(result["total"], result["first_bytes"], result["last"] - result["first"], flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
