"""The ``clock`` table and the bookkeeping of a tick: applied once, in its partition's order.

A tick already applied (its id is in ``applied_events``) is a duplicate; a tick older than the
partition's last one is stale. Otherwise the family's ``age`` rescores the partition's rows in
pages of their own transactions (idempotent: a page redone after a crash gives the same rows
and alert ids), and one last transaction records the tick as the partition's last.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import asyncpg

from schemas.clock import ClockTick
from worker.domain.batch import BatchOutcome, Incoming
from worker.store import events

Out = TypeVar("Out", bound=BatchOutcome[Any])
Aged = TypeVar("Aged", bound=BatchOutcome[Any], covariant=True)


class Age(Protocol[Aged]):
    """A family's ageing of one partition's rows as of a tick, holding ``writing`` while it
    writes a page (the ticks ageing side by side write one page at a time)."""

    def __call__(
        self,
        pool: asyncpg.Pool,
        partition: int,
        tick: Incoming[ClockTick],
        *,
        writing: asyncio.Lock,
    ) -> Awaitable[Aged]: ...


async def due_pages(
    pool: asyncpg.Pool, sql: str, partition: int, key: str, page_size: int, now: datetime
) -> AsyncIterator[tuple[asyncpg.Connection, list[asyncpg.Record], list[asyncpg.Record]]]:
    """The rows of ``partition`` a tick at ``now`` ages, a page per transaction: yields the
    transaction's connection, the rows due (not yet scored at or after ``now``: a page redone
    after a crash, or an event newer than the tick, keeps its scores) and the whole page.
    ``sql`` takes (partition, after key, limit) and returns ``key`` and ``scored_at``."""
    after = ""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql, partition, after, page_size)
            if not rows:
                return
            due = [r for r in rows if r["scored_at"] is None or r["scored_at"] < now]
            yield conn, due, rows
        if len(rows) < page_size:  # the last page: no need to ask for another
            return
        after = rows[-1][key]


RECORD_TICK = """
INSERT INTO clock (topic, partition, last_tick, tick_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (topic, partition) DO UPDATE
SET last_tick = EXCLUDED.last_tick, tick_id = EXCLUDED.tick_id, applied_at = now()
WHERE clock.last_tick < EXCLUDED.last_tick
"""


async def last_tick(conn: asyncpg.Connection, topic: str, partition: int) -> datetime | None:
    return await conn.fetchval(
        "SELECT last_tick FROM clock WHERE topic = $1 AND partition = $2", topic, partition
    )


async def apply_tick(
    pool: asyncpg.Pool,
    age: Age[Out],
    tick: Incoming[ClockTick],
    out: Out,
    writing: asyncio.Lock,
) -> Out:
    """Apply ``tick`` to its partition, filing it in ``out`` (an empty outcome of the family)
    as duplicate, stale or applied, with what the ageing changed merged in. ``writing`` is
    the lock the ticks ageing side by side share to write their pages one at a time."""
    topic, partition = tick.ref.topic, tick.ref.partition
    async with pool.acquire() as conn:
        if await events.seen(conn, [tick.event.id]):
            out.duplicates.append(tick)
            return out
        last = await last_tick(conn, topic, partition)
        if last is not None and tick.event.time <= last:
            await events.record(conn, (), [tick])
            out.stale.append(tick)
            return out
    out.merge(await age(pool, partition, tick, writing=writing))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(RECORD_TICK, topic, partition, tick.event.time, tick.event.id)
        await events.record(conn, [tick], ())
    out.applied.append(tick)
    return out


CLOCK_LOCK = 0x7265_7663_6C6B  # "revclk": the session lock of the one clock publisher


async def try_lead(conn: asyncpg.Connection) -> bool:
    """Take the publisher's lock for this connection's session, if no one holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", CLOCK_LOCK))
