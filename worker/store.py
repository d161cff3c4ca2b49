"""PostgreSQL access for the worker: load deal states, write a batch's effects set-based."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from worker.alerts import AlertTrack
from worker.merge import DealState
from worker.pipeline import StoredDeal

# Columns of ``deals`` written from a merged, scored state (all but updated_at).
_STATE_COLUMNS: dict[str, str] = {
    "deal_id": "text",
    "name": "text",
    "company": "text",
    "owner": "text",
    "industry": "text",
    "amount": "numeric",
    "currency": "text",
    "stage": "text",
    "expected_close_date": "date",
    "lead_score": "smallint",
    "interactions": "integer",
    "objections_handled": "integer",
    "has_champion": "boolean",
    "budget_confirmed": "boolean",
    "decision_maker_engaged": "boolean",
    "competitors": "text[]",
    "last_activity_at": "timestamptz",
    "close_date_pushes": "integer",
    "created_at": "timestamptz",
    "stage_entered_at": "timestamptz",
    "closed_at": "timestamptz",
    "last_event_id": "text",
    "last_event_time": "timestamptz",
}
_SCORE_COLUMNS: dict[str, str] = {
    "health_score": "smallint",
    "health_category": "text",
    "close_probability": "numeric",
    "risk_factors": "jsonb",
    "score_details": "jsonb",
    "framework_version": "text",
    "scored_at": "timestamptz",
    "predicted_amount": "numeric",
}
_ALERT_COLUMNS: dict[str, str] = {"alert_level": "text", "alert_ref_probability": "numeric"}
_ALL = {**_STATE_COLUMNS, **_SCORE_COLUMNS, **_ALERT_COLUMNS}
_COLS = ", ".join(_ALL)
_RECORDSET = ", ".join(f"{c} {t}" for c, t in _ALL.items())
_UPDATES = ",\n    ".join(f"{c} = EXCLUDED.{c}" for c in _ALL if c != "deal_id")

UPSERT_DEALS = f"""
INSERT INTO deals ({_COLS})
SELECT {_COLS}
FROM jsonb_to_recordset($1::jsonb) AS r({_RECORDSET})
ON CONFLICT (deal_id) DO UPDATE SET
    {_UPDATES}
"""

RECORD_EVENTS = """
INSERT INTO applied_events (event_id, deal_id, event_time, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
ON CONFLICT (event_id) DO NOTHING
"""


_LOAD_COLUMNS = ", ".join(
    [*_STATE_COLUMNS, *_ALERT_COLUMNS, "health_score", "health_category", "close_probability"]
)


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _stored(record: asyncpg.Record) -> StoredDeal:
    data = {c: record[c] for c in _STATE_COLUMNS}
    data["competitors"] = tuple(data["competitors"] or ())
    track = AlertTrack(
        level=record["alert_level"],
        ref_probability=_optional_float(record["alert_ref_probability"]),
        health_score=record["health_score"],
        health_category=record["health_category"],
        close_probability=_optional_float(record["close_probability"]),
    )
    return StoredDeal(DealState.model_validate(data), track)


async def create_pool(database_url: str) -> asyncpg.Pool:
    # batches, the outbox relay, the forecast job and /health each take a connection at times
    return await asyncpg.create_pool(database_url, min_size=1, max_size=6, command_timeout=60)


async def lock_deals(conn: asyncpg.Connection, deal_ids: Sequence[str]) -> dict[str, StoredDeal]:
    """Current state of these deals, row-locked until the transaction ends (a rebalance may
    briefly give two workers the same partition; the lock orders their writes)."""
    rows = await conn.fetch(
        f"SELECT {_LOAD_COLUMNS} FROM deals WHERE deal_id = ANY($1::text[]) "
        "ORDER BY deal_id FOR UPDATE",
        list(deal_ids),
    )
    return {r["deal_id"]: _stored(r) for r in rows}


async def lock_page(
    conn: asyncpg.Connection, after: str, limit: int, not_version: str | None
) -> list[StoredDeal]:
    """The next ``limit`` deals by id after ``after`` (all, or those not scored with
    ``not_version``), row-locked until the transaction ends."""
    rows = await conn.fetch(
        f"SELECT {_LOAD_COLUMNS} FROM deals WHERE deal_id > $1 "
        "AND ($3::text IS NULL OR framework_version IS DISTINCT FROM $3) "
        "ORDER BY deal_id LIMIT $2 FOR UPDATE",
        after,
        limit,
        not_version,
    )
    return [_stored(r) for r in rows]


async def seen_events(conn: asyncpg.Connection, event_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT event_id FROM applied_events WHERE event_id = ANY($1::text[])", list(event_ids)
    )
    return {r["event_id"] for r in rows}


async def upsert_deals(conn: asyncpg.Connection, rows_json: str) -> None:
    await conn.execute(UPSERT_DEALS, rows_json)


async def record_outcomes(
    conn: asyncpg.Connection, applied: Iterable[Any], stale: Iterable[Any]
) -> None:
    """Remember the ids of applied and stale events (items with an ``event``): a redelivery
    of either is then recognised as a duplicate."""
    rows = [(i.event.id, i.event.subject, i.event.time, "applied") for i in applied]
    rows += [(i.event.id, i.event.subject, i.event.time, "stale") for i in stale]
    if rows:
        ids, subjects, times, outcomes = zip(*rows, strict=True)
        await conn.execute(RECORD_EVENTS, list(ids), list(subjects), list(times), list(outcomes))


INSERT_OUTBOX = """
INSERT INTO alert_outbox (alert_id, deal_id, kind, payload, occurred_at)
SELECT alert_id, deal_id, kind, payload, occurred_at
FROM jsonb_to_recordset($1::jsonb)
    AS r(alert_id uuid, deal_id text, kind text, payload jsonb, occurred_at timestamptz)
ON CONFLICT (alert_id) DO NOTHING
"""


async def insert_alerts(conn: asyncpg.Connection, outbox_json: str) -> None:
    await conn.execute(INSERT_OUTBOX, outbox_json)


CLOSE_STINTS = """
UPDATE deal_stage_history h SET left_at = f.first_entered
FROM (
    SELECT deal_id, min(entered_at) AS first_entered
    FROM jsonb_to_recordset($1::jsonb) AS r(deal_id text, entered_at timestamptz)
    GROUP BY deal_id
) f
WHERE h.deal_id = f.deal_id AND h.left_at IS NULL AND h.entered_at < f.first_entered
"""

INSERT_STINTS = """
INSERT INTO deal_stage_history (deal_id, stage, entered_at, left_at)
SELECT deal_id, stage, entered_at, left_at
FROM jsonb_to_recordset($1::jsonb)
    AS r(deal_id text, stage text, entered_at timestamptz, left_at timestamptz)
ON CONFLICT (deal_id, entered_at) DO UPDATE SET stage = EXCLUDED.stage, left_at = EXCLUDED.left_at
"""


async def record_stints(conn: asyncpg.Connection, stints_json: str) -> None:
    """Close each deal's running stint where a new one starts, then add the new ones."""
    await conn.execute(CLOSE_STINTS, stints_json)
    await conn.execute(INSERT_STINTS, stints_json)


async def sync_framework_params(pool: asyncpg.Pool, params: dict[str, float]) -> None:
    """Numbers of the framework file that SQL views need (e.g. the at-risk threshold)."""
    await pool.executemany(
        "INSERT INTO framework_params (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        list(params.items()),
    )
