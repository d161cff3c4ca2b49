"""A batch's ticks age their partitions side by side; a failure of one is raised as it is, not
wrapped in an exception group, so a transient one (the database gone) is retried as transient
by the consumer (``worker.retry.TRANSIENT`` matches types, not groups) (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import asyncpg
import pytest

from schemas.clock import make_tick
from worker.domain.batch import Incoming, RecordRef
from worker.domain.deal_batch import DealBatchOutcome, apply_deal_batch
from worker.engine import load_framework
from worker.retry import TRANSIENT
from worker.store import deals
from worker.store.batches import Projection, apply_batch

pytestmark = pytest.mark.integration


async def test_a_tick_that_fails_transiently_is_raised_as_itself(db):
    topic = f"test.batches-{uuid.uuid4().hex[:8]}"
    at = datetime(2026, 6, 1, tzinfo=UTC)
    ticks = [
        Incoming(make_tick(at, topic, p, 86400), RecordRef(topic, p, 0, b"clock", None, ()))
        for p in (0, 1)
    ]

    async def age(
        pool: asyncpg.Pool, partition: int, tick: Incoming, *, writing: asyncio.Lock
    ) -> DealBatchOutcome:
        if partition == 1:
            raise asyncpg.PostgresConnectionError("connection lost")
        await asyncio.sleep(0.05)
        return DealBatchOutcome()

    async def dead_letter(rejected: list) -> None:
        raise AssertionError(rejected)

    projection = Projection(
        lock=deals.lock,
        fold=partial(apply_deal_batch, framework=load_framework()),
        write=deals.write,
        age=age,
    )
    try:
        with pytest.raises(asyncpg.PostgresConnectionError) as raised:
            await apply_batch(db, projection, ticks, dead_letter)
        assert isinstance(raised.value, TRANSIENT)
    finally:
        await db.execute("DELETE FROM clock WHERE topic = $1", topic)
        await db.execute(
            "DELETE FROM applied_events WHERE event_id = ANY($1::text[])",
            [t.event.id for t in ticks],
        )
