#!/usr/bin/env python3
"""Does a Kafka broker answer on HOST PORT?

    kafka_probe.py HOST PORT

Speaks just enough of the Kafka wire protocol to tell a working broker from a port that is
merely open: an ApiVersions v0 request, then a Metadata v4 request, which must list at least
one registered broker. On success prints one line, ``brokers 1@127.0.0.1:9092, cluster <id>``,
and exits 0; otherwise prints the reason to stderr and exits 1.

scripts/services.sh runs it, possibly with the system /usr/bin/python3 before the project's
virtualenv exists, so it uses the standard library only and runs on older Pythons too.
"""

# Keeps the annotations below unevaluated, for system Pythons older than 3.10.
from __future__ import annotations

import socket
import struct
import sys

CLIENT_ID = b"revintel-services-probe"
API_VERSIONS = 18
METADATA = 3
CONNECT_TIMEOUT = 3.0  # seconds
IO_TIMEOUT = 5.0  # seconds, per socket operation


class ProbeError(Exception):
    """The broker answered, but not as a usable broker does (message printed as is)."""


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read exactly n bytes; a peer that hangs up early is an OSError."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed by peer")
        buf += chunk
    return buf


def call(sock: socket.socket, api_key: int, version: int, cid: int, body: bytes = b"") -> bytes:
    """Send one request (header v1: key, version, correlation id, client id) and return the
    response body after its correlation id."""
    msg = struct.pack(">hhih", api_key, version, cid, len(CLIENT_ID)) + CLIENT_ID + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", recv_exactly(sock, 4))
    data = recv_exactly(sock, size)
    if struct.unpack(">i", data[:4])[0] != cid:
        raise OSError("not a Kafka response (correlation id mismatch)")
    return data[4:]


def read_string(data: bytes, off: int) -> tuple[str | None, int]:
    """A nullable Kafka STRING (int16 length, -1 for null) at off, and the offset after it."""
    (n,) = struct.unpack_from(">h", data, off)
    off += 2
    if n < 0:
        return None, off
    return data[off : off + n].decode(), off + n


def probe(host: str, port: int) -> str:
    """One-line summary of the broker at host:port; raises ProbeError, OSError, struct.error or
    UnicodeDecodeError when there is none that works."""
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as s:
        s.settimeout(IO_TIMEOUT)
        r = call(s, API_VERSIONS, 0, 1)
        (err,) = struct.unpack_from(">h", r, 0)
        if err:
            raise ProbeError(f"ApiVersions error code {err}")
        # Metadata v4: all topics (null array), no auto-creation.
        r = call(s, METADATA, 4, 2, struct.pack(">ib", -1, 0))
        _throttle, nbrokers = struct.unpack_from(">ii", r, 0)
        off = 8
        brokers = []
        for _ in range(nbrokers):
            (node,) = struct.unpack_from(">i", r, off)
            bhost, off = read_string(r, off + 4)
            (bport,) = struct.unpack_from(">i", r, off)
            _rack, off = read_string(r, off + 4)
            brokers.append(f"{node}@{bhost}:{bport}")
        cluster_id, off = read_string(r, off)
    if not brokers:
        # A KRaft broker listens before it has registered with its controller.
        raise ProbeError("broker answers but no broker is registered yet")
    return f"brokers {','.join(brokers)}, cluster {cluster_id}"


def main(argv: list[str] | None = None) -> int:
    """Probe argv[1]:argv[2]; exit status 0 if a broker works, 1 if not, 2 on bad usage."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].isdigit():
        print("usage: kafka_probe.py HOST PORT", file=sys.stderr)
        return 2
    host, port = args[0], int(args[1])
    try:
        print(probe(host, port))
    except ProbeError as e:
        print(e, file=sys.stderr)
        return 1
    except (OSError, struct.error, UnicodeDecodeError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
