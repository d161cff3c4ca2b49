"""Claiming a run's event ids (``worker.store.events``) against real PostgreSQL: ids recorded
before are the duplicates; a second worker sharing a partition after a rebalance waits on the
first's uncommitted claim and then finds the ids taken (or free, when the first rolled back);
settling marks the stale ids and lets the failed ones go."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from worker.store import events

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Event:
    id: str
    subject: str
    time: datetime


@dataclass(frozen=True)
class Item:
    event: Event


def items(*names: str) -> list[Item]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [Item(Event(name, f"D-{name}", at)) for name in names]


def ids(n: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    return [f"{prefix}-{i}" for i in range(n)]


async def test_ids_recorded_before_are_duplicates_and_a_rerun_claims_nothing(
    db: asyncpg.Pool,
) -> None:
    a, b, c = ids(3)
    async with db.acquire() as conn, conn.transaction():
        assert await events.claim(conn, items(a, b, a)) == set()  # within a run: fold's job
    async with db.acquire() as conn, conn.transaction():
        assert await events.claim(conn, items(b, c, a)) == {a, b}


async def test_a_second_worker_waits_for_the_first_and_finds_its_claims(db: asyncpg.Pool) -> None:
    a, b, c = ids(3)
    async with db.acquire() as first, db.acquire() as second:
        for outcome, taken in (("rollback", set()), ("commit", {a, b})):
            tx = first.transaction()
            await tx.start()
            await events.claim(first, items(a, b))
            waiting = asyncio.create_task(_claim_in_transaction(second, items(b, c, a)))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # blocked on the first's uncommitted ids
            await (tx.rollback() if outcome == "rollback" else tx.commit())
            assert await asyncio.wait_for(waiting, 10) == taken
            if outcome == "rollback":  # the second claimed them: clear for the next round
                await second.execute(events.RELEASE, [a, b, c])


async def _claim_in_transaction(conn: asyncpg.Connection, run: list[Item]) -> set[str]:
    async with conn.transaction():
        return await events.claim(conn, run)


async def test_settle_marks_stale_and_releases_failed(db: asyncpg.Pool) -> None:
    applied, stale, failed = ids(3)
    run = items(applied, stale, failed)
    async with db.acquire() as conn, conn.transaction():
        await events.claim(conn, run)
        await events.settle(conn, {applied, stale, failed}, run[:1], run[1:2])
    rows = await db.fetch(
        "SELECT event_id, outcome FROM applied_events WHERE event_id = ANY($1::text[])",
        [applied, stale, failed],
    )
    assert {r["event_id"]: r["outcome"] for r in rows} == {applied: "applied", stale: "stale"}
