"""The deal model's data in PostgreSQL: its training rows (the month-start ``deal_snapshots``,
the closes in ``deals``), the data's as-of, and the rescoring of every open deal with a new
champion, a page per transaction, as of one instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from worker.domain.clock import rescore_open
from worker.engine import Framework
from worker.log import get_logger
from worker.models.deal import Snapshot
from worker.models.deal_features import ClosedDeal
from worker.models.deal_scoring import HEURISTIC, DealModels
from worker.models.deal_training import KnownAmount
from worker.store.deals import AGE_PAGE, aging_deal, write_scores

log = get_logger(component="deal-models")


@dataclass(frozen=True, slots=True)
class SnapshotDeal:
    """An open deal as a snapshot kept it: the attributes the deal model's features read."""

    deal_id: str
    owner: str | None
    company: str | None
    industry: str | None
    amount: Decimal | None
    stage: str
    expected_close_date: date | None
    lead_score: int | None
    interactions: int
    objections_handled: int
    has_champion: bool
    budget_confirmed: bool
    decision_maker_engaged: bool
    competitors: int
    last_activity_at: datetime | None
    close_date_pushes: int
    created_at: datetime
    stage_entered_at: datetime
    close_probability: Decimal | None  # what was served that day


_SNAPSHOT_FIELDS = ", ".join(SnapshotDeal.__dataclass_fields__)
_MONTH_STARTS = """
SELECT snapshot_date, min(taken_at) AS taken_at FROM deal_snapshots
WHERE extract(day FROM snapshot_date) = 1 AND taken_at <= $1
GROUP BY snapshot_date ORDER BY snapshot_date
"""


async def data_as_of(conn: asyncpg.Connection) -> datetime | None:
    """The data's now: the newest event or tick applied (``data_as_of()``)."""
    return await conn.fetchval("SELECT data_as_of()")


async def month_start_snapshots(
    conn: asyncpg.Connection, until: datetime, since: date | None = None
) -> list[Snapshot]:
    """The snapshots of the 1st of each month taken by ``until`` (from ``since``), oldest
    first: the backtest's cadence."""
    days = await conn.fetch(_MONTH_STARTS, until)
    out = []
    for day in days:
        if since is not None and day["snapshot_date"] < since:
            continue
        rows = await conn.fetch(
            f"SELECT {_SNAPSHOT_FIELDS} FROM deal_snapshots WHERE snapshot_date = $1 "
            "ORDER BY deal_id",
            day["snapshot_date"],
        )
        out.append(Snapshot(day["taken_at"], [SnapshotDeal(**dict(r)) for r in rows]))
    return out


async def snapshot_on_or_after(conn: asyncpg.Connection, at: datetime) -> Snapshot | None:
    """The first daily snapshot taken at or after ``at`` (any day), or ``None``."""
    day = await conn.fetchrow(
        "SELECT snapshot_date, min(taken_at) AS taken_at FROM deal_snapshots "
        "WHERE snapshot_date >= ($1 AT TIME ZONE 'UTC')::date GROUP BY snapshot_date "
        "HAVING min(taken_at) >= $1 ORDER BY snapshot_date LIMIT 1",
        at,
    )
    if day is None:
        return None
    rows = await conn.fetch(
        f"SELECT {_SNAPSHOT_FIELDS} FROM deal_snapshots WHERE snapshot_date = $1 ORDER BY deal_id",
        day["snapshot_date"],
    )
    return Snapshot(day["taken_at"], [SnapshotDeal(**dict(r)) for r in rows])


async def closed_deals(conn: asyncpg.Connection) -> dict[str, ClosedDeal]:
    """Every won or lost deal with its close time."""
    rows = await conn.fetch(
        "SELECT deal_id, owner, company, industry, stage, closed_at, amount FROM deals "
        "WHERE stage IN ('closed_won', 'closed_lost') AND closed_at IS NOT NULL"
    )
    return {
        r["deal_id"]: ClosedDeal(
            deal_id=r["deal_id"],
            owner=r["owner"],
            company=r["company"],
            industry=r["industry"],
            won=r["stage"] == "closed_won",
            closed_at=r["closed_at"],
            amount=None if r["amount"] is None else float(r["amount"]),
        )
        for r in rows
    }


async def known_amounts(conn: asyncpg.Connection) -> list[KnownAmount]:
    rows = await conn.fetch(
        "SELECT industry, amount, created_at FROM deals WHERE amount IS NOT NULL AND amount > 0"
    )
    return [KnownAmount(r["industry"], float(r["amount"]), r["created_at"]) for r in rows]


_OPEN_PAGE = """
SELECT deal_id, name, company, owner, amount, currency, stage, industry, lead_score,
       interactions, objections_handled, has_champion, budget_confirmed, decision_maker_engaged,
       cardinality(competitors) AS competitors, last_activity_at, stage_entered_at, created_at,
       expected_close_date, close_date_pushes, alert_level, alert_ref_probability, health_score,
       health_category, close_probability
FROM deals
WHERE deal_id > $1 AND stage NOT IN ('closed_won', 'closed_lost')
ORDER BY deal_id LIMIT $2 FOR UPDATE
"""


async def rescore_open_deals(
    pool: asyncpg.Pool,
    framework: Framework,
    models: DealModels,
    as_of: datetime,
    page: int = AGE_PAGE,
) -> int:
    """Rescore every open deal as of ``as_of`` with ``models`` (alert levels kept), a page per
    transaction, each page scored in one call per model and written in one statement.
    Returns how many deals were rescored."""
    done, after = 0, ""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_OPEN_PAGE, after, page)
            if not rows:
                break
            scored = rescore_open([aging_deal(r) for r in rows], as_of, framework, models)
            if scored.model_error:
                raise RuntimeError(f"the deal model failed: {scored.model_error}")
            await write_scores(conn, scored, as_of)
        done += len(rows)
        after = rows[-1]["deal_id"]
        if len(rows) < page:
            break
    version = models.champion.version if models.champion else HEURISTIC
    log.info("open_deals_rescored", deals=done, prob_model_version=version, as_of=as_of)
    return done
