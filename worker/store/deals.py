"""The ``deals`` table and the deal side of a batch: lock the batch's deals, write their new
state and scores, their stage history and their alerts (to the outbox), set-based."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from worker.domain.alerts import AlertTrack
from worker.domain.deal import DealState
from worker.domain.deal_batch import DealBatchOutcome, StoredDeal
from worker.engine import DealScore, DealValuePrediction
from worker.store import outbox
from worker.store.upsert import insert_from_json, rows_json

# Columns of ``deals`` written from a merged, scored state (all but updated_at).
STATE_COLUMNS: dict[str, str] = {
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
SCORE_COLUMNS: dict[str, str] = {
    "health_score": "smallint",
    "health_category": "text",
    "close_probability": "numeric",
    "risk_factors": "jsonb",
    "score_details": "jsonb",
    "framework_version": "text",
    "scored_at": "timestamptz",
    "predicted_amount": "numeric",
}
ALERT_COLUMNS: dict[str, str] = {"alert_level": "text", "alert_ref_probability": "numeric"}
COLUMNS = {**STATE_COLUMNS, **SCORE_COLUMNS, **ALERT_COLUMNS}
assert set(STATE_COLUMNS) == set(DealState.model_fields), "deals columns out of step"

UPSERT_DEALS = insert_from_json(
    "deals", COLUMNS, conflict=("deal_id",), update=[c for c in COLUMNS if c != "deal_id"]
)
_STINT_COLUMNS = {"deal_id": "text", "stage": "text", "entered_at": "timestamptz"}
CLOSE_STINTS = """
UPDATE deal_stage_history h SET left_at = f.first_entered
FROM (
    SELECT deal_id, min(entered_at) AS first_entered
    FROM jsonb_to_recordset($1::jsonb) AS r(deal_id text, entered_at timestamptz)
    GROUP BY deal_id
) f
WHERE h.deal_id = f.deal_id AND h.left_at IS NULL AND h.entered_at < f.first_entered
"""
INSERT_STINTS = insert_from_json(
    "deal_stage_history",
    {**_STINT_COLUMNS, "left_at": "timestamptz"},
    conflict=("deal_id", "entered_at"),
    update=("stage", "left_at"),
)
_LOAD_COLUMNS = ", ".join(
    [*STATE_COLUMNS, *ALERT_COLUMNS, "health_score", "health_category", "close_probability"]
)


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _stored(record: asyncpg.Record) -> StoredDeal:
    data = {c: record[c] for c in STATE_COLUMNS}
    data["competitors"] = tuple(data["competitors"] or ())
    track = AlertTrack(
        level=record["alert_level"],
        ref_probability=_optional_float(record["alert_ref_probability"]),
        health_score=record["health_score"],
        health_category=record["health_category"],
        close_probability=_optional_float(record["close_probability"]),
    )
    return StoredDeal(DealState.model_validate(data), track)


async def lock(conn: asyncpg.Connection, deal_ids: Sequence[str]) -> dict[str, StoredDeal]:
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


def deal_row(
    state: DealState,
    score: DealScore,
    track: AlertTrack,
    prediction: DealValuePrediction | None = None,
) -> dict[str, Any]:
    """The ``deals`` row of a scored state."""
    row = state.model_dump()
    row["competitors"] = list(state.competitors)
    row["health_score"] = score.health.score
    row["health_category"] = score.health.category
    row["close_probability"] = round(score.probability.probability, 2)
    row["risk_factors"] = list(score.health.risk_factors)
    row["score_details"] = {
        "health": score.health.to_dict(),
        "probability": score.probability.to_dict(),
    }
    row["predicted_amount"] = None
    if prediction is not None:
        row["predicted_amount"] = prediction.predicted_value
        row["score_details"]["value"] = prediction.model_dump()
    row["framework_version"] = score.framework_version
    row["scored_at"] = state.last_event_time
    row["alert_level"] = track.level
    row["alert_ref_probability"] = (
        None if track.ref_probability is None else round(track.ref_probability, 2)
    )
    return row


async def upsert(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """The new state and scores of every deal the outcome changed."""
    rows = (
        deal_row(s, outcome.scores[d], outcome.tracks[d], outcome.predictions.get(d))
        for d, s in outcome.states.items()
    )
    await conn.execute(UPSERT_DEALS, rows_json(rows))


async def record_stints(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """Close each deal's running stint where a new one starts, then add the new ones."""
    stints = rows_json(
        {"deal_id": s.deal_id, "stage": s.stage, "entered_at": s.entered_at, "left_at": s.left_at}
        for s in outcome.new_stints()
    )
    await conn.execute(CLOSE_STINTS, stints)
    await conn.execute(INSERT_STINTS, stints)


async def write(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """Everything a deal batch changes, in the caller's transaction."""
    if outcome.states:
        await upsert(conn, outcome)
    if outcome.stints:
        await record_stints(conn, outcome)
    if outcome.alerts:
        await outbox.insert(conn, outcome.alerts)
