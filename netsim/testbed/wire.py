"""Tensors on a TCP stream: the testbed's message format, and what it adds to the simulator's bits.

A message is a fixed 8-byte prefix (the header's length, then the payload's, big-endian uint32),
a JSON header (kind, round, user, and per tensor its name, dtype and shape) and the tensors' raw
bytes back to back, in the order of the header — no pickling, so the receiver rebuilds each tensor
with `torch.frombuffer` and the bytes on the wire are the tensors' bytes plus `overhead_bytes`.
bfloat16, which numpy cannot hold, travels as its raw 2-byte words.
"""

from __future__ import annotations

import json
import socket
import struct

import torch

PREFIX = struct.Struct(">II")
DTYPES = {str(dt).removeprefix("torch."): dt for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64,
                                                        torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool)}


class WireError(ValueError):
    """A malformed or truncated message."""


def encode(kind: str, tensors: dict[str, torch.Tensor], **fields) -> tuple[bytes, list[memoryview]]:
    """(prefix + header, the tensors' bytes): what `send` writes, in that order."""
    entries, views, payload = [], [], 0
    for name, tensor in tensors.items():
        t = tensor.detach().contiguous().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise WireError(f"tensor {name!r}: dtype {dtype} is not sent")
        raw = t.view(torch.uint8) if t.numel() and t.dtype != torch.bool else t.to(torch.uint8)
        view = memoryview(raw.numpy()).cast("B")
        entries.append({"name": name, "dtype": dtype, "shape": list(t.shape), "nbytes": len(view)})
        views.append(view)
        payload += len(view)
    header = json.dumps({"kind": kind, **fields, "tensors": entries}, separators=(",", ":")).encode()
    return PREFIX.pack(len(header), payload) + header, views


def overhead_bytes(kind: str, tensors: dict[str, torch.Tensor], **fields) -> int:
    """Bytes a message adds to its tensors' own: the prefix and the JSON header."""
    head, _ = encode(kind, tensors, **fields)
    return len(head)


def send(sender, kind: str, tensors: dict[str, torch.Tensor], **fields) -> int:
    """Write one message through `sender` (a socket, or a shaper.ShapedSender, which adds the link's
    latency once per message); the bytes written."""
    head, views = encode(kind, tensors, **fields)
    parts = [memoryview(head), *views]
    if hasattr(sender, "sendall_parts"):
        sender.sendall_parts(parts)
    else:
        for part in parts:
            sender.sendall(part)
    return sum(len(p) for p in parts)


def _read_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise WireError(f"the stream ended after {got} of {n} bytes")
        got += k
    return buf


def receive(sock: socket.socket) -> tuple[dict, dict[str, torch.Tensor], int]:
    """Read one message: (its header fields, its tensors, the bytes it took on the wire)."""
    header_len, payload_len = PREFIX.unpack(_read_exactly(sock, PREFIX.size))
    try:
        header = json.loads(bytes(_read_exactly(sock, header_len)))
    except json.JSONDecodeError as err:
        raise WireError(f"malformed header: {err}") from None
    payload = _read_exactly(sock, payload_len)
    tensors, offset = {}, 0
    for entry in header.pop("tensors"):
        n = entry["nbytes"]
        raw = torch.frombuffer(payload, dtype=torch.uint8, count=n, offset=offset) if n else torch.empty(0, dtype=torch.uint8)
        dtype = DTYPES[entry["dtype"]]
        t = raw.to(torch.bool) if dtype == torch.bool else raw.view(dtype)
        tensors[entry["name"]] = t.reshape(entry["shape"]).clone()
        offset += n
    if offset != payload_len:
        raise WireError(f"the header lists {offset} bytes of tensors, the message carries {payload_len}")
    return header, tensors, PREFIX.size + header_len + payload_len
