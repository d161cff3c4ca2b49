"""The ``accounts`` table: lock a batch's accounts (with their alert tracks), write their new
state, scores and alert levels, and their alerts (to the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from pydantic_core import from_json, to_jsonable_python

from schemas.clock import ClockTick
from worker.domain.account import AccountOutcome, AccountScore, AccountState
from worker.domain.account_alerts import AccountTrack
from worker.domain.account_batch import AccountBatchOutcome, StoredAccount, age_accounts
from worker.domain.batch import Incoming
from worker.engine import Framework
from worker.models.churn import LoadedChurnModel
from worker.store import outbox
from worker.store.clock import due_pages
from worker.store.upsert import insert_from_json, rows_json

# Columns of ``accounts`` written from a merged, scored state (all but updated_at).
STATE_COLUMNS: dict[str, str] = {
    "account_id": "text",
    "name": "text",
    "industry": "text",
    "owner": "text",
    "plan": "text",
    "licensed_seats": "integer",
    "features_available": "integer",
    "features_used": "integer",
    "usage_history": "jsonb",
    "open_tickets": "jsonb",
    "failed_invoices": "jsonb",
    "failed_payments_total": "integer",
    "nps": "smallint",
    "csat": "numeric",
    "nps_submitted_at": "timestamptz",
    "renewal_date": "date",
    "arr": "numeric",
    "downgrade_requested": "boolean",
    "attributes": "jsonb",
    "outcome": "text",
    "outcome_at": "timestamptz",
    "created_at": "timestamptz",
    "last_event_id": "text",
    "last_event_time": "timestamptz",
}
DERIVED_COLUMNS: dict[str, str] = {
    "active_seats": "integer",
    "logins": "integer",
    "open_ticket_count": "integer",
    "escalated_tickets": "integer",
    "max_ticket_severity": "text",
    "failed_payments": "integer",
    "days_overdue": "integer",
}
SCORE_COLUMNS: dict[str, str] = {
    "churn_risk": "smallint",
    "churn_level": "text",
    "churn_drivers": "jsonb",
    "expansion_score": "smallint",
    "expansion_motion": "text",
    "expansion_drivers": "jsonb",
    "score_details": "jsonb",
    "framework_version": "text",
    "churn_model_version": "text",
    "scored_at": "timestamptz",
}
ALERT_COLUMNS: dict[str, str] = {"alert_level": "text"}
ROUTING_COLUMNS: dict[str, str] = {"source_partition": "integer"}  # ticks there age it
COLUMNS: dict[str, str] = {
    **STATE_COLUMNS,
    **DERIVED_COLUMNS,
    **SCORE_COLUMNS,
    **ALERT_COLUMNS,
    **ROUTING_COLUMNS,
}
assert set(STATE_COLUMNS) == set(AccountState.model_fields), "accounts columns out of step"

UPSERT_ACCOUNTS = insert_from_json(
    "accounts",
    COLUMNS,
    conflict=("account_id",),
    update=[c for c in COLUMNS if c not in ("account_id", "created_at")],
    keep_if_null=ROUTING_COLUMNS,
)
# what a batch or a tick loads: the state and the alert track (level, last churn scored)
LOAD_COLUMNS = ", ".join([*STATE_COLUMNS, *ALERT_COLUMNS, "churn_risk", "churn_level"])
LOCK_ACCOUNTS = (
    f"SELECT {LOAD_COLUMNS} FROM accounts WHERE account_id = ANY($1::text[]) "
    "ORDER BY account_id FOR UPDATE"
)
NO_ALERT = AccountTrack()
# What rescoring an account as stored changes (a tick, a new champion): its scores, the days
# overdue (counted to "now") and the alert level. The state is as loaded (row-locked): only
# these columns are written, not the whole row again.
SCORED_COLUMNS: dict[str, str] = {
    "account_id": "text",
    "days_overdue": "integer",
    **SCORE_COLUMNS,
    **ALERT_COLUMNS,
}
UPDATE_SCORED = (
    "UPDATE accounts AS a SET "
    + ", ".join(f"{c} = r.{c}" for c in SCORED_COLUMNS if c != "account_id")
    + " FROM jsonb_to_recordset($1::jsonb) AS r("
    + ", ".join(f"{c} {t}" for c, t in SCORED_COLUMNS.items())
    + ") WHERE a.account_id = r.account_id"
)
_JSON_COLUMNS = ("usage_history", "open_tickets", "failed_invoices", "attributes")


def state_from_row(row: Mapping[str, Any]) -> AccountState:
    """The state of a stored ``accounts`` row (jsonb columns as text or decoded)."""
    data = {c: row[c] for c in STATE_COLUMNS}
    for c in _JSON_COLUMNS:
        if isinstance(data[c], str | bytes):
            data[c] = from_json(data[c])  # what json.loads gives, 3x faster
    if data["csat"] is not None:
        data["csat"] = float(data["csat"])
    return AccountState.model_validate(data)


def stored_from_row(row: Mapping[str, Any]) -> StoredAccount:
    """A stored account's state and alert track."""
    track = AccountTrack(row["alert_level"], row["churn_risk"], row["churn_level"])
    return StoredAccount(state_from_row(row), track)


async def lock(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, StoredAccount]:
    """Current state and alert track of these accounts, row-locked until the transaction
    ends."""
    rows = await conn.fetch(LOCK_ACCOUNTS, list(account_ids))
    return {r["account_id"]: stored_from_row(r) for r in rows}


def account_row(
    state: AccountState,
    score: AccountScore,
    partition: int | None = None,
    track: AccountTrack = NO_ALERT,
) -> dict[str, Any]:
    """The ``accounts`` row of a scored state with its alert level."""
    row = state.model_dump(mode="json")
    row["source_partition"] = partition
    latest = state.latest_usage
    row.update(
        active_seats=latest.active_seats if latest else None,
        logins=latest.logins if latest else None,
        open_ticket_count=state.open_ticket_count,
        escalated_tickets=state.escalated_tickets,
        max_ticket_severity=state.max_ticket_severity,
        failed_payments=state.failed_payments,
    )
    row.update(scored_row(state, score, track))
    return row


def scored_row(state: AccountState, score: AccountScore, track: AccountTrack) -> dict[str, Any]:
    """The columns of an account's row its scoring sets (:data:`SCORED_COLUMNS`): what a
    rescoring of the state as stored changes."""
    churn, expansion = score.churn, score.expansion
    return dict(
        account_id=state.account_id,
        alert_level=track.level,
        days_overdue=state.days_overdue(score.as_of or state.last_event_time),
        churn_risk=churn.score,
        churn_level=churn.level,
        churn_drivers=list(churn.drivers),
        expansion_score=expansion.score if expansion else None,
        expansion_motion=expansion.motion if expansion else None,
        expansion_drivers=list(expansion.drivers) if expansion else [],
        score_details={
            "churn": churn.to_dict(),
            "churn_model": score.learned.to_dict() if score.learned else None,
            "expansion": expansion.to_dict() if expansion else None,
            "expansion_unscored": score.expansion_unscored,
        },
        framework_version=score.framework_version,
        churn_model_version=score.churn_model_version,
        scored_at=to_jsonable_python(score.as_of or state.last_event_time),
    )


async def write(conn: asyncpg.Connection, outcome: AccountBatchOutcome) -> None:
    """Everything an account batch changes, in the caller's transaction: the accounts and
    their alerts (to the outbox)."""
    if outcome.states:
        rows = (
            account_row(s, outcome.scores[a], outcome.partitions.get(a), outcome.tracks[a])
            for a, s in outcome.states.items()
        )
        await conn.execute(UPSERT_ACCOUNTS, rows_json(rows))
    if outcome.outcomes:
        await conn.execute(INSERT_OUTCOMES, rows_json(outcome_row(o) for o in outcome.outcomes))
    if outcome.alerts:
        await outbox.insert(conn, outcome.alerts)


async def write_scored(conn: asyncpg.Connection, outcome: AccountBatchOutcome) -> None:
    """The new scores and alert levels of accounts rescored as stored (a tick's page), and
    their alerts (to the outbox), in the caller's transaction."""
    if outcome.states:
        rows = (
            scored_row(s, outcome.scores[a], outcome.tracks[a]) for a, s in outcome.states.items()
        )
        await conn.execute(UPDATE_SCORED, rows_json(rows))
    if outcome.alerts:
        await outbox.insert(conn, outcome.alerts)


OUTCOME_COLUMNS = {
    "event_id": "text",
    "account_id": "text",
    "outcome": "text",
    "occurred_at": "timestamptz",
    "state": "jsonb",
}
INSERT_OUTCOMES = insert_from_json("account_outcomes", OUTCOME_COLUMNS, conflict=("event_id",))


def outcome_row(o: AccountOutcome) -> dict[str, Any]:
    return {
        "event_id": o.event_id,
        "account_id": o.account_id,
        "outcome": o.outcome,
        "occurred_at": o.occurred_at,
        "state": o.before.model_dump(mode="json"),
    }


AGE_PAGE = 2000  # accounts per transaction when a tick ages a partition
_AGING = (
    f"SELECT {LOAD_COLUMNS}, scored_at FROM accounts "
    "WHERE source_partition = $1 AND account_id > $2 ORDER BY account_id LIMIT $3 FOR UPDATE"
)


async def age(
    pool: asyncpg.Pool,
    partition: int,
    tick: Incoming[ClockTick],
    framework: Framework,
    churn_model: LoadedChurnModel | None = None,
    *,
    writing: asyncio.Lock | None = None,
) -> AccountBatchOutcome:
    """Rescore the accounts of ``partition`` as of the tick and raise their alert transitions,
    a page per transaction (accounts already scored at or after it keep their scores and
    levels: a page redone after a crash, or an event newer than the tick)."""
    out = AccountBatchOutcome()
    now = tick.event.time
    turn = writing or asyncio.Lock()  # alone: no other tick's page to wait for
    async for conn, due, _ in due_pages(pool, _AGING, partition, "account_id", AGE_PAGE, now):
        stored = [stored_from_row(r) for r in due]
        # in a thread: the churn model's trees let go of the interpreter, so the other
        # partitions' pages are read, decoded and written meanwhile
        page = await asyncio.to_thread(age_accounts, stored, tick, framework, churn_model)
        async with turn:  # one page written at a time (see store.batches.age_side_by_side)
            await write_scored(conn, page)
        out.alerts.extend(page.alerts)  # not the scores: a tick may age many accounts
        out.aged += page.aged
    return out
