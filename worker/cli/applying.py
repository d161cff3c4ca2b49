"""What a publishing command learns from the database: how many of its events the worker has
applied (the second progress bar of ``revintel replay``), and whether the target database
already holds deals of another origin (mixed data gives meaningless views)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection

import asyncpg

# A replay can send 100,000 ids: asking for them in one array per poll stays one index probe
# per id (applied_events' primary key), about 50 ms; a poll a second is enough for a bar.
POLL_SECONDS = 1.0


async def foreign_deals(conn: asyncpg.Connection, own: Collection[str]) -> tuple[int, list[str]]:
    """Deals in the database whose id is not one of ``own``: their count and up to 3 ids."""
    rows = await conn.fetch(
        "SELECT deal_id, count(*) OVER () AS total FROM deals d "
        "WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) o (id) WHERE o.id = d.deal_id) "
        "ORDER BY deal_id LIMIT 3",
        list(own),
    )
    return (rows[0]["total"] if rows else 0), [r["deal_id"] for r in rows]


async def applied_count(conn: asyncpg.Connection, event_ids: list[str]) -> int:
    """How many of ``event_ids`` the worker has recorded (applied or stale)."""
    return await conn.fetchval(
        "SELECT count(*) FROM unnest($1::text[]) e (id) "
        "WHERE EXISTS (SELECT 1 FROM applied_events a WHERE a.event_id = e.id)",
        event_ids,
    )


async def follow_applied(
    conn: asyncpg.Connection,
    event_ids: list[str],
    on_progress: Callable[[int], None],
    stall_seconds: float,
    published: asyncio.Event,
) -> int:
    """Poll until every one of ``event_ids`` is applied, reporting the count; once
    ``published`` is set, fail with TimeoutError when the count has not moved for
    ``stall_seconds`` (no worker running, or events dead-lettered). A total deadline would not
    do: a large replay takes its time, and a slow (``--rate``) one publishes for long."""
    done, moved_at = -1, time.monotonic()
    while True:
        count = await applied_count(conn, event_ids)
        if count != done or not published.is_set():
            moved_at = time.monotonic()
        if count != done:
            done = count
            on_progress(done)
        if done >= len(event_ids):
            return done
        if time.monotonic() - moved_at > stall_seconds:
            raise TimeoutError(
                f"the worker applied {done:,} of {len(event_ids):,} events and none more in "
                f"{stall_seconds:.0f}s: is `revintel run` running? (dead letters: <topic>.dlq)"
            )
        await asyncio.sleep(POLL_SECONDS)


def foreign_warning(count: int, examples: list[str]) -> str:
    """The warning printed before replaying into a database holding other deals."""
    shown = ", ".join(examples) + (", ..." if count > len(examples) else "")
    return (
        f"warning: the database already holds {count:,} deal{'s' if count != 1 else ''} "
        f"not from this export ({shown}); "
        "the views will mix them with the replay (stage ages, win rates, forecasts). "
        "Replay into an empty database to read the export alone."
    )
