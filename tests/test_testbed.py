"""The testbed's shaped links (netsim/testbed, issue #24): each shaper delivers the configured rate
within 2 % on a long transfer, measured by the receiver's clock; what the kernel shaper creates is
gone after it closes. The kernel variant needs root and skips with the reason elsewhere."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from splitsim.netsim.testbed import ShapedSender
from splitsim.netsim.testbed.kernel import KernelLinks, unavailable_reason
from splitsim.netsim.testbed.probe import goodput_bps, receive_all


class _FakeSocket:
    def __init__(self, now):
        self.now, self.sent = now, []

    def sendall(self, piece):
        self.sent.append((self.now[0], len(piece)))


def test_a_message_leaves_in_exactly_its_bits_over_the_rate_and_idle_time_lends_nothing():
    now = [0.0]
    sock = _FakeSocket(now)
    sender = ShapedSender(sock, 8e6, chunk_bytes=10_000, clock=lambda: now[0],
                          sleep=lambda s: now.__setitem__(0, now[0] + s))
    sender.sendall(bytes(1_000_000))  # 1 MB at 1 MB/s
    assert now[0] == pytest.approx(1.0, rel=1e-12)
    assert sock.sent[0] == (pytest.approx(0.01), 10_000)  # each chunk leaves once its bytes "arrived"
    now[0] += 5.0  # an idle link saves no credit: the next message takes its full time again
    sender.sendall_parts([bytes(300_000), bytes(200_000)])
    assert now[0] == pytest.approx(6.5, rel=1e-12)
    with pytest.raises(ValueError, match="rate_bps"):
        ShapedSender(sock, 0.0)


def _receive_all(server: socket.socket, out: dict) -> None:
    conn, _ = server.accept()
    with conn:
        out.update(receive_all(conn))


@pytest.mark.parametrize("rate_bps", [2e6, 20e6])
def test_the_application_shaper_delivers_its_rate_within_2_percent(rate_bps):
    server = socket.create_server(("127.0.0.1", 0))
    result: dict = {}
    receiver = threading.Thread(target=_receive_all, args=(server, result))
    receiver.start()
    nbytes = int(rate_bps / 8 * 2.5)  # 2.5 s of traffic
    with socket.create_connection(server.getsockname()) as sock:
        ShapedSender(sock, rate_bps).sendall(bytes(nbytes))
    receiver.join(30)
    server.close()
    assert result["total"] == nbytes
    assert goodput_bps(result) == pytest.approx(rate_bps, rel=0.02)


def test_a_message_waits_its_latency_before_its_first_byte():
    server = socket.create_server(("127.0.0.1", 0))
    result: dict = {}
    receiver = threading.Thread(target=_receive_all, args=(server, result))
    receiver.start()
    with socket.create_connection(server.getsockname()) as sock:
        start = time.perf_counter()
        ShapedSender(sock, 1e9, latency_s=0.2).sendall(b"x" * 100)
    receiver.join(10)
    server.close()
    assert result["first"] - start >= 0.2


SENDER = textwrap.dedent("""
    import socket, sys
    with socket.create_connection((sys.argv[1], 5001)) as sock:
        sock.sendall(bytes(int(sys.argv[2])))
""")


@pytest.mark.skipif(unavailable_reason() is not None, reason=f"kernel shaper: {unavailable_reason()}")
def test_the_kernel_shaper_delivers_its_rate_within_2_percent_and_leaves_nothing_behind():
    rate_bps = 8e6
    nbytes = int(rate_bps / 8 * 3)  # 3 s of traffic
    with KernelLinks() as links:
        tag = links.tag
        links.add_device("user")
        links.add_device("server")
        user_ip, server_ip = links.link("user", "server", rate_bps, rate_bps)
        receiver = subprocess.Popen(links.command("server", [sys.executable, "-m", "splitsim.netsim.testbed.probe", server_ip,
                                                             "5001"]), stdout=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout.readline().strip() == "ready"
            subprocess.run(links.command("user", [sys.executable, "-c", SENDER, server_ip, str(nbytes)]), check=True,
                           timeout=60)
            total, first_bytes, elapsed = receiver.communicate(timeout=60)[0].split()
        finally:
            receiver.kill()
        assert int(total) == nbytes
        assert 8 * (int(total) - int(first_bytes)) / float(elapsed) == pytest.approx(rate_bps, rel=0.02)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in listed


TIMED_RECEIVER = textwrap.dedent("""
    import socket, sys, time
    server = socket.create_server((sys.argv[1], 5002))
    print("ready", flush=True)
    conn, _ = server.accept()
    need, got = int(sys.argv[2]), 0
    while got < need:
        got += len(conn.recv(1 << 16))
    print(time.monotonic(), flush=True)
""")
PACED_SENDER = textwrap.dedent("""
    import socket, sys, time
    from splitsim.netsim.testbed.shaper import ShapedSender
    sock = socket.create_connection((sys.argv[1], 5002))
    time.sleep(1.0)  # idle: the kernel's token bucket fills up
    sender = ShapedSender(sock, float(sys.argv[3]))
    start = time.monotonic()
    sender.sendall(bytes(int(sys.argv[2])))
    print(start, flush=True)
    time.sleep(1.0)
    sock.close()
""")


@pytest.mark.skipif(unavailable_reason() is not None, reason=f"kernel shaper: {unavailable_reason()}")
def test_the_first_message_after_idle_takes_its_time_on_a_kernel_shaped_link():
    """issue 34, item 6: a 221 kB adapter after an idle gap, over a tbf link, paced by its sender as
    the testbed's devices now are: its last byte arrives bits / rate after its first left, within 2 %
    (one clock: both namespaces share the host's monotonic clock). Unpaced, as the devices were, the
    full bucket let it arrive about 13 % early."""
    rate_bps, nbytes = 8e6, 221_000
    with KernelLinks() as links:
        links.add_device("user")
        links.add_device("server")
        user_ip, server_ip = links.link("user", "server", rate_bps, rate_bps)
        receiver = subprocess.Popen(links.command("server", [sys.executable, "-c", TIMED_RECEIVER, server_ip,
                                                             str(nbytes)]), stdout=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout.readline().strip() == "ready"
            sent = subprocess.run(links.command("user", [sys.executable, "-c", PACED_SENDER, server_ip, str(nbytes),
                                                         str(rate_bps)]), capture_output=True, text=True, check=True,
                                  timeout=60)
            arrived = float(receiver.communicate(timeout=60)[0].split()[0])
        finally:
            receiver.kill()
    took = arrived - float(sent.stdout.split()[0])
    assert took == pytest.approx(nbytes * 8 / rate_bps, rel=0.02)


def test_tensors_cross_the_wire_bit_for_bit_with_a_stated_overhead():
    import torch

    from splitsim.netsim.testbed import wire

    tensors = {"hidden": torch.randn(4, 16, 32).to(torch.bfloat16), "mask": torch.ones(4, 16, dtype=torch.bool),
               "ids": torch.arange(64).reshape(4, 16), "lora_A": torch.randn(8, 32), "empty": torch.zeros(0)}
    a, b = socket.socketpair()
    with a, b:
        sent = {}
        thread = threading.Thread(target=lambda: sent.update(n=wire.send(a, "activations", tensors, round=3, user=1)))
        thread.start()
        header, got, nbytes = wire.receive(b)
        thread.join()
    assert header == {"kind": "activations", "round": 3, "user": 1}
    for name, t in tensors.items():
        assert got[name].dtype == t.dtype and got[name].shape == t.shape and torch.equal(got[name], t), name
    payload = sum(t.numel() * t.element_size() for t in tensors.values())
    assert nbytes == sent["n"] == payload + wire.overhead_bytes("activations", tensors, round=3, user=1)


def test_a_truncated_message_is_an_error_not_a_hang():
    from splitsim.netsim.testbed import wire

    a, b = socket.socketpair()
    with b:
        head, views = wire.encode("x", {"t": __import__("torch").zeros(100)})
        a.sendall(head + bytes(views[0])[:50])
        a.close()
        with pytest.raises(wire.WireError, match="ended after"):
            wire.receive(b)


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class _Control:
    """The coordinator's side of a device's control channel, scripted: what it asks, what it got."""

    def __init__(self, *asks):
        self.asks, self.got = list(asks), []

    def recv(self):
        return self.asks.pop(0)

    def send(self, message):
        self.got.append(message)


def test_a_slower_device_stretches_every_step_of_its_work_and_its_calibration_by_its_share():
    from splitsim.netsim.testbed.device import Device, DeviceSpec

    spec = DeviceSpec(name="user0", role="sfl_user", user=0, model={}, cuts=(1,), users=1, rounds=1, local_steps=1,
                      compute_share=0.25)
    device = Device(spec, _Control(("calibrate", 1), ("go", {})))
    for _ in range(3):  # short steps between idle gaps: what a CPU quota over a 10 ms period never slowed
        with device.timed("user0", "client_forward", 0, 0):
            _busy(0.004)
        time.sleep(0.01)
    durations = [end - start for start, end, *_ in device.events]
    # each step took at least its work (4 ms) / 0.25: the wait comes after the work, whatever the host's load
    assert all(d >= 0.016 for d in durations), durations
    device.ready_and_wait(lambda steps: {"user_forward": [0.004] * steps})
    (_, name, times), = [m for m in device.control.got if m[0] == "calibrated"]
    assert name == "user0" and times["user_forward"][0] >= 0.016  # the calibration is stretched alike

    full = Device(DeviceSpec(**{**spec.__dict__, "compute_share": 1.0}), _Control())
    assert full.stretch(0.004) == 0.004  # a device at the host's pace waits for nothing
