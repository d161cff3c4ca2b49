"""The ``alert_outbox`` table: alerts (a deal's or an account's) are written in the transaction
that changes their subject, and published from here by the relay (``worker.tasks.outbox_relay``).
The ``deal_id`` column holds the subject's id (the deal's or the account's; ``entity`` says
which), the key the alert is published with."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from schemas.alerts import AccountAlert, DealAlert
from worker.store.upsert import insert_from_json, rows_json

RELAY_LOCK = 0x7265_7661_6C72  # advisory lock key: one publishing relay at a time

INSERT = insert_from_json(
    "alert_outbox",
    {
        "alert_id": "uuid",
        "deal_id": "text",
        "entity": "text",
        "kind": "text",
        "payload": "jsonb",
        "occurred_at": "timestamptz",
    },
    conflict=("alert_id",),
)
PENDING = """
SELECT seq, alert_id, deal_id, entity, kind, payload::text AS payload
FROM alert_outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1
"""
MARK_PUBLISHED = """
UPDATE alert_outbox SET published_at = now(), attempts = attempts + 1
WHERE seq = ANY($1::bigint[])
"""


def subject_id(alert: DealAlert | AccountAlert) -> str:
    """The id of the deal or account the alert is about."""
    return alert.deal_id if isinstance(alert, DealAlert) else alert.account_id


async def insert(conn: asyncpg.Connection, alerts: Sequence[DealAlert | AccountAlert]) -> None:
    await conn.execute(
        INSERT,
        rows_json(
            {
                "alert_id": a.alert_id,
                "deal_id": subject_id(a),
                "entity": a.entity,
                "kind": a.kind,
                "payload": a.model_dump(mode="json"),
                "occurred_at": a.occurred_at,
            }
            for a in alerts
        ),
    )


async def lock_relay(conn: asyncpg.Connection) -> bool:
    """Whether this session is the one publishing relay (until :func:`unlock_relay`, or the
    session's end): a session lock, so no transaction stays open while the broker answers."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK))


async def unlock_relay(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)


async def pending(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(PENDING, limit)


async def mark_published(conn: asyncpg.Connection, seqs: Sequence[int]) -> None:
    await conn.execute(MARK_PUBLISHED, list(seqs))


async def backlog(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM alert_outbox WHERE published_at IS NULL")
