"""The ``applied_events`` table: every applied (or stale) event id, so a redelivery is
recognised as a duplicate and changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

RECORD_EVENTS = """
INSERT INTO applied_events (event_id, deal_id, event_time, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
ON CONFLICT (event_id) DO NOTHING
"""


async def seen(conn: asyncpg.Connection, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids were applied (or found stale) before."""
    rows = await conn.fetch(
        "SELECT event_id FROM applied_events WHERE event_id = ANY($1::text[])", list(event_ids)
    )
    return {r["event_id"] for r in rows}


async def record(conn: asyncpg.Connection, applied: Iterable[Any], stale: Iterable[Any]) -> None:
    """Remember the ids of applied and stale events (items with an ``event``): a redelivery
    of either is then recognised as a duplicate."""
    rows = [(i.event.id, i.event.subject, i.event.time, "applied") for i in applied]
    rows += [(i.event.id, i.event.subject, i.event.time, "stale") for i in stale]
    if rows:
        ids, subjects, times, outcomes = zip(*rows, strict=True)
        await conn.execute(RECORD_EVENTS, list(ids), list(subjects), list(times), list(outcomes))
