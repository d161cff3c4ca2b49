"""Bounded retention of the worker's bookkeeping rows.

``applied_events`` remembers every applied event id so a redelivery changes nothing; an id only
needs remembering while the event can still be redelivered, i.e. while it can still be on an
input topic. Rows older than ``retention_days`` (by ``applied_at``: bookkeeping time, not event
time) are deleted, as are alert outbox rows published that long ago. Set the retention at or
above the input topics' retention (Kafka's default is 7 days; ours defaults to 30). A replay
from a topic older than that into the same database would re-apply events whose ids were
pruned: replay into an empty database instead (the result is the same state).

Daily deal snapshots are data, not bookkeeping: they are kept ``snapshot_days`` counted back
from the data's own date (``data_as_of_date()``), so a replay of old data keeps its history.
"""

from __future__ import annotations

import asyncpg

PRUNE_BATCH = 10_000  # rows per statement: short transactions, no long locks


async def prune(
    pool: asyncpg.Pool, retention_days: float, snapshot_days: float = 730.0
) -> dict[str, int]:
    """Delete rows older than their retention; return how many per table."""
    deleted = {"applied_events": 0, "alert_outbox": 0, "deal_snapshots": 0}
    statements = {
        "applied_events": """
            DELETE FROM applied_events WHERE event_id IN (
                SELECT event_id FROM applied_events
                WHERE applied_at < now() - make_interval(secs => $1 * 86400)
                LIMIT $2)""",
        "alert_outbox": """
            DELETE FROM alert_outbox WHERE seq IN (
                SELECT seq FROM alert_outbox
                WHERE published_at < now() - make_interval(secs => $1 * 86400)
                LIMIT $2)""",
        "deal_snapshots": """
            DELETE FROM deal_snapshots WHERE (snapshot_date, deal_id) IN (
                SELECT snapshot_date, deal_id FROM deal_snapshots
                WHERE snapshot_date < data_as_of_date() - ceil($1)::integer
                LIMIT $2)""",
    }
    days = {"applied_events": retention_days, "alert_outbox": retention_days}
    days["deal_snapshots"] = snapshot_days
    for table, sql in statements.items():
        while True:
            status = await pool.execute(sql, days[table], PRUNE_BATCH)
            count = int(status.rsplit(" ", 1)[1])
            deleted[table] += count
            if count < PRUNE_BATCH:
                break
    return deleted
