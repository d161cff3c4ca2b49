"""The ``applied_events`` table: every applied (or stale) event id, so a redelivery is
recognised as a duplicate and changes nothing. A run of events claims its ids up front (one
insert that also tells the duplicates) and settles the stale and failed ones after its fold;
a clock tick checks (``seen``) and records (``record``) its one id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

RECORD_EVENTS = """
INSERT INTO applied_events (event_id, deal_id, event_time, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
ON CONFLICT (event_id) DO NOTHING
"""


CLAIM_EVENTS = """
INSERT INTO applied_events (event_id, deal_id, event_time, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) ORDER BY 1
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
MARK_STALE = "UPDATE applied_events SET outcome = 'stale' WHERE event_id = ANY($1::text[])"
RELEASE = "DELETE FROM applied_events WHERE event_id = ANY($1::text[])"


async def claim(conn: asyncpg.Connection, items: Iterable[Any]) -> set[str]:
    """Record the ids of ``items`` (with an ``event``) as applied, in one statement, before
    they are applied; return those recorded before (duplicates). In id order: a worker that
    briefly shares a partition after a rebalance waits on the other's uncommitted ids, then
    finds them recorded, so one of the two applies each event."""
    rows = {i.event.id: (i.event.subject, i.event.time) for i in items}
    if not rows:
        return set()
    ids = list(rows)
    subjects, times = zip(*rows.values(), strict=True)
    new = await conn.fetch(CLAIM_EVENTS, ids, list(subjects), list(times), ["applied"] * len(ids))
    return set(ids) - {r["event_id"] for r in new}


async def settle(
    conn: asyncpg.Connection, claimed: Iterable[str], applied: Iterable[Any], stale: Iterable[Any]
) -> None:
    """After the fold: the claimed ids found stale say so; those neither applied nor stale
    (failed in processing, dead-lettered) are let go, so a redelivery is processed again."""
    stale_ids = [i.event.id for i in stale]
    failed = set(claimed) - {i.event.id for i in applied} - set(stale_ids)
    if stale_ids:
        await conn.execute(MARK_STALE, stale_ids)
    if failed:
        await conn.execute(RELEASE, sorted(failed))


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
