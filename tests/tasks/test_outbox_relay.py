"""The outbox relay against real PostgreSQL and Kafka: one relay publishes at a time (a session
advisory lock), no transaction stays open while the broker answers, rows are marked after the
broker acknowledged them, and the lock is free again afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from tests.services import Services, fresh_database, read_topic, unique
from worker.store.pool import create_pool
from worker.tasks.outbox_relay import OutboxRelay

pytestmark = pytest.mark.integration


class GatedProducer:
    """The real producer, its sends held until ``gate`` opens (the broker 'slow')."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def send(self, topic: str, **kwargs: Any) -> Any:
        self.waiting.set()
        await self.gate.wait()
        return await self.producer.send(topic, **kwargs)


@pytest.fixture
async def pool(services: Services) -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database(services.database_url, prefix="revintel_relay") as url:
        pool = await create_pool(url, max_size=4)
        yield pool
        await pool.close()


async def add_alerts(pool: asyncpg.Pool, n: int) -> None:
    await pool.executemany(
        "INSERT INTO alert_outbox (alert_id, deal_id, entity, kind, payload, occurred_at) "
        "VALUES ($1, $2, 'deal', 'at_risk', $3, $4)",
        [
            (uuid.uuid4(), f"D{i}", json.dumps({"level": "at_risk"}), datetime.now(UTC))
            for i in range(n)
        ],
    )


async def test_one_relay_at_a_time_and_no_transaction_held_while_publishing(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, services: Services
) -> None:
    topic = unique("test.alerts")
    await add_alerts(pool, 3)
    gated = GatedProducer(producer)
    first = OutboxRelay(pool, gated, topic)  # type: ignore[arg-type]
    second = OutboxRelay(pool, producer, topic)

    publishing = asyncio.create_task(first.publish_pending())
    try:
        await asyncio.wait_for(gated.waiting.wait(), 10)
        # the first holds the relay's lock: the second publishes nothing
        assert await second.publish_pending() == 0
        # ... and no session is inside a transaction while the broker is waited for
        states = await pool.fetch(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        assert "idle in transaction" not in {r["state"] for r in states}
        pending = "SELECT count(*) FROM alert_outbox WHERE published_at IS NULL"
        assert await pool.fetchval(pending) == 3
    finally:
        gated.gate.set()
        published = await asyncio.wait_for(publishing, 30)
    assert published == 3
    assert await pool.fetchval("SELECT count(*) FROM alert_outbox WHERE published_at IS NULL") == 0
    assert len(await read_topic(services.bootstrap, topic, 3)) == 3

    # the lock was let go: the other relay publishes what comes next
    await add_alerts(pool, 2)
    assert await second.publish_pending() == 2
    locks = await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert locks == 0
