"""The broker, then PostgreSQL, unreachable for 15 s mid-stream, for one worker process only:
its connections pass a TCP gate (tests/proxy.py) that is closed and reopened; the shared
services keep running. The worker waits and retries, never dead-letters for it, and ends with
the state and alert ids of an undisturbed run."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.faults.conftest import assert_same, process_env, spawn_worker, stop_worker
from tests.faults.route import ROUTE_ENV
from tests.proxy import TcpGate
from tests.services import read_all
from worker.kafka.topics import dlq_topic

pytestmark = [pytest.mark.integration, pytest.mark.faults]
OUTAGE_SECONDS = 15


async def outage(gate: TcpGate) -> None:
    await gate.close()
    await asyncio.sleep(OUTAGE_SECONDS)
    await gate.open()


async def test_broker_unreachable_for_15_seconds(services, undisturbed, new_run):
    run = await new_run()
    host, port = services.bootstrap.split(",")[0].rsplit(":", 1)
    gate = TcpGate(host, int(port))
    await gate.open()
    env = process_env(run.settings, **{ROUTE_ENV: f"{host}:{port}={gate.address}"})
    worker = await spawn_worker(env)
    try:
        await run.reached(0.3)
        await outage(gate)
        outcome = await run.finished()
    finally:
        await stop_worker(worker)
        await gate.close()
    assert_same(outcome, undisturbed)
    assert await read_all(services.bootstrap, dlq_topic(run.settings.deal_topic)) == []


async def test_postgres_unreachable_for_15_seconds(services, undisturbed, new_run):
    run = await new_run()
    db = urlsplit(run.settings.database_url)
    gate = TcpGate(db.hostname or "127.0.0.1", db.port or 5432)
    await gate.open()
    netloc = db.netloc.rsplit("@", 1)[0] + "@" + gate.address
    gated_url = urlunsplit(db._replace(netloc=netloc))
    worker = await spawn_worker(process_env(run.settings, DATABASE_URL=gated_url))
    try:
        await run.reached(0.3)
        await outage(gate)
        outcome = await run.finished()
    finally:
        await stop_worker(worker)
        await gate.close()
    assert_same(outcome, undisturbed)
    assert await read_all(services.bootstrap, dlq_topic(run.settings.deal_topic)) == []
