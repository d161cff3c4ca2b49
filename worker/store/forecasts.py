"""The ``forecast_runs`` and ``forecast_snapshots`` tables: one runner at a time (a session
advisory lock), runs marked running / completed / failed, snapshot rows written at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

FORECAST_LOCK = 0x7265_7666_6F72  # "revfor": advisory lock key, one forecast run at a time

OPEN_DEALS = """
SELECT amount, close_probability, expected_close_date
FROM deals
WHERE stage NOT IN ('closed_won', 'closed_lost')
"""

_ALREADY_RAN = """
SELECT EXISTS (SELECT 1 FROM forecast_runs
               WHERE kind = $1 AND status <> 'failed' AND started_at >= $2)
"""
_SWEEP_ABANDONED = """
UPDATE forecast_runs
SET status = 'failed', finished_at = greatest(clock_timestamp(), started_at),
    error = 'abandoned: the runner stopped before finishing'
WHERE status = 'running'
RETURNING run_id
"""
_INSERT_RUN = """
INSERT INTO forecast_runs (run_id, as_of, kind, status, horizon_months, deal_count,
                           framework_version, model_version)
VALUES ($1, $2, $3, 'running', $4, $5, $6, $7)
"""
_INSERT_SNAPSHOT = """
INSERT INTO forecast_snapshots (run_id, as_of, month, deal_count, pipeline, weighted, p10, p50,
                                p90, expected_wins, framework_version, method, open_pipeline,
                                overdue_part, new_business, seasonal, model_weight, model_point)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
"""
# What the deal model reads of an open deal (worker.models.deal_features.base_row).
_FEATURE_COLUMNS = """
deal_id, name, company, owner, industry, amount, stage, expected_close_date, lead_score,
interactions, objections_handled, has_champion, budget_confirmed, decision_maker_engaged,
competitors, last_activity_at, close_date_pushes, created_at, stage_entered_at,
close_probability
"""
_OPEN_DEAL_STATES = f"""
SELECT {_FEATURE_COLUMNS}, cardinality(competitors) AS competitor_count FROM deals
WHERE stage NOT IN ('closed_won', 'closed_lost')
"""
_OPEN_DEAL_STATES_ON = f"""
SELECT {_FEATURE_COLUMNS}, competitors AS competitor_count, taken_at FROM deal_snapshots
WHERE snapshot_date = $1
"""
# Won value of the complete months before $1 by (close month, creation month), as month
# indexes (year * 12 + month - 1), and the first month with any close.
_WON_HISTORY = """
SELECT (extract(year FROM closed_at AT TIME ZONE 'UTC') * 12
        + extract(month FROM closed_at AT TIME ZONE 'UTC') - 1)::int AS closed_month,
       (extract(year FROM created_at AT TIME ZONE 'UTC') * 12
        + extract(month FROM created_at AT TIME ZONE 'UTC') - 1)::int AS created_month,
       sum(amount)::float8 AS won
FROM deals
WHERE stage = 'closed_won' AND closed_at < $1
GROUP BY 1, 2
"""
_FIRST_CLOSE = """
SELECT min(closed_at) FROM deals WHERE stage IN ('closed_won', 'closed_lost')
"""
# Month 0 of the first learned run of each month before $1 (as_of in that month), with what
# was won from its as-of to the month's end.
_PAST_MONTH_ZERO = """
SELECT DISTINCT ON (s.month) s.month, s.model_point, s.seasonal, s.p50,
       (SELECT coalesce(sum(d.amount), 0)::float8 FROM deals d
        WHERE d.stage = 'closed_won'
          AND d.closed_at >= s.as_of::timestamp AT TIME ZONE 'UTC'
          AND d.closed_at < (s.month + interval '1 month')::timestamp AT TIME ZONE 'UTC')
           AS actual
FROM forecast_snapshots s JOIN forecast_runs r USING (run_id)
WHERE r.status = 'completed' AND s.method = 'learned' AND s.month = date_trunc('month', s.as_of)
  AND s.month < $1
ORDER BY s.month, s.as_of, r.started_at
"""
_COMPLETE_RUN = """
UPDATE forecast_runs
SET status = 'completed', finished_at = greatest(clock_timestamp(), started_at), duration_ms = $2
WHERE run_id = $1
"""
_FAIL_RUN = """
UPDATE forecast_runs
SET status = 'failed', finished_at = greatest(clock_timestamp(), started_at), duration_ms = $2,
    error = $3
WHERE run_id = $1 AND status = 'running'
"""


def _numeric(x: float) -> Decimal:
    """Shortest round-tripping decimal of a float (not its full binary expansion)."""
    return Decimal(repr(float(x)))


async def try_lock(conn: asyncpg.Connection) -> bool:
    """Take the runner's lock for this connection's session, if no one else holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", FORECAST_LOCK))


async def unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", FORECAST_LOCK)


async def already_ran(conn: asyncpg.Connection, kind: str, since: datetime) -> bool:
    return bool(await conn.fetchval(_ALREADY_RAN, kind, since))


async def sweep_abandoned(conn: asyncpg.Connection) -> list[UUID]:
    """Mark runs left ``running`` by a runner that died as failed (call with the lock held)."""
    return [r[0] for r in await conn.fetch(_SWEEP_ABANDONED)]


async def data_as_of(conn: asyncpg.Connection) -> tuple[datetime | None, date | None]:
    """The newest event time applied to any deal, and its UTC date."""
    row = await conn.fetchrow("SELECT data_as_of(), data_as_of_date()")
    return row[0], row[1]


async def open_deals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The open deals' forecast inputs, in one set query."""
    return await conn.fetch(OPEN_DEALS)


async def open_deals_on(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record] | None:
    """The open deals' forecast inputs as the daily snapshot of ``day`` has them (None: no
    snapshot of that day)."""
    rows = await conn.fetch(
        "SELECT amount, close_probability, expected_close_date, taken_at FROM deal_snapshots "
        "WHERE snapshot_date = $1",
        day,
    )
    return rows or None


async def insert_run(
    conn: asyncpg.Connection,
    run_id: UUID,
    as_of: date,
    kind: str,
    months: int,
    deal_count: int,
    framework_version: str | None,
    model_version: str = "heuristic",
) -> None:
    await conn.execute(
        _INSERT_RUN, run_id, as_of, kind, months, deal_count, framework_version, model_version
    )


async def open_deal_states(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The open deals with everything the deal model reads."""
    return await conn.fetch(_OPEN_DEAL_STATES)


async def open_deal_states_on(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record] | None:
    """The same, as the daily snapshot of ``day`` has them (None: no snapshot that day)."""
    return (await conn.fetch(_OPEN_DEAL_STATES_ON, day)) or None


async def won_history(
    conn: asyncpg.Connection, before: datetime
) -> tuple[dict[tuple[int, int], float], datetime | None]:
    """Won value before ``before`` by (close month, creation month); the first close."""
    rows = await conn.fetch(_WON_HISTORY, before)
    first = await conn.fetchval(_FIRST_CLOSE)
    return {(r["closed_month"], r["created_month"]): r["won"] for r in rows}, first


async def past_month_zero(conn: asyncpg.Connection, before: date) -> list[asyncpg.Record]:
    """Month 0 of the first learned run of every month before ``before``, with its actual."""
    return await conn.fetch(_PAST_MONTH_ZERO, before)


async def complete_run(
    conn: asyncpg.Connection,
    run_id: UUID,
    as_of: date,
    months: Sequence[Any],
    framework_version: str | None,
    duration_ms: int,
    overdue: Any = None,
) -> None:
    """Insert the run's snapshot rows (``ForecastMonth``-like) and mark it completed, in one
    transaction: a crash before the commit leaves no snapshot row at all."""
    async with conn.transaction():
        await conn.executemany(
            _INSERT_SNAPSHOT,
            [
                (
                    run_id,
                    as_of,
                    m.month,
                    m.deal_count,
                    _numeric(m.pipeline),
                    _numeric(m.weighted),
                    _numeric(m.p10),
                    _numeric(m.p50),
                    _numeric(m.p90),
                    _numeric(m.expected_wins),
                    framework_version,
                    *_parts(m),
                )
                for m in months
            ],
        )
        await conn.execute(_COMPLETE_RUN, run_id, duration_ms)
        if overdue is not None:
            await conn.execute(
                _RECORD_OVERDUE,
                run_id,
                overdue.deal_count,
                _numeric(overdue.pipeline),
                _numeric(overdue.weighted),
                _numeric(overdue.p10),
                _numeric(overdue.p50),
                _numeric(overdue.p90),
                _numeric(overdue.expected_wins),
            )


def _parts(m: Any) -> tuple[Any, ...]:
    """method, open_pipeline, overdue_part, new_business, seasonal, model_weight, model_point."""
    parts = getattr(m, "parts", None)
    if parts is None:
        return (getattr(m, "method", None), None, None, None, None, None, None)
    point = parts.open_pipeline + parts.overdue + parts.new_business
    seasonal = None if parts.seasonal is None else _numeric(parts.seasonal)
    return (
        m.method,
        _numeric(parts.open_pipeline),
        _numeric(parts.overdue),
        _numeric(parts.new_business),
        seasonal,
        _numeric(parts.model_weight),
        _numeric(point),
    )


_RECORD_OVERDUE = """
UPDATE forecast_runs SET overdue_deals = $2, overdue_pipeline = $3, overdue_weighted = $4,
    overdue_p10 = $5, overdue_p50 = $6, overdue_p90 = $7, overdue_expected_wins = $8
WHERE run_id = $1
"""


async def fail_run(conn: asyncpg.Connection, run_id: UUID, duration_ms: int, error: str) -> None:
    await conn.execute(_FAIL_RUN, run_id, duration_ms, error)
