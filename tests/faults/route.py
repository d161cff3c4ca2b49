"""Test-only entry point of a worker process whose Kafka connections all pass a TCP gate.

The broker advertises its own address, so a gate given as the bootstrap server would only
carry the first connection. ``REVINTEL_TEST_KAFKA_ROUTE="HOST:PORT=GATEHOST:GATEPORT"`` makes
every aiokafka connection to the broker's address go to the gate instead: closing the gate
takes the broker away from this process only (the shared broker keeps running).

Run as ``python -c "from tests.faults.route import main; main()" run``.
"""

from __future__ import annotations

import os

ROUTE_ENV = "REVINTEL_TEST_KAFKA_ROUTE"


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def install(route: str) -> None:
    from aiokafka import conn

    source, target = (_address(part) for part in route.split("="))
    original = conn.AIOKafkaConnection.__init__

    def routed(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if (host, int(port)) == source:
            host, port = target
        original(self, host, port, *args, **kwargs)

    conn.AIOKafkaConnection.__init__ = routed  # type: ignore[method-assign]


def main() -> None:
    route = os.environ.get(ROUTE_ENV)
    if route:
        install(route)
    from worker.cli import app

    app()
