"""The ``deals`` table and the deal side of a batch: lock the batch's deals, write their new
state and scores, their stage history and their alerts (to the outbox), set-based."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import asyncpg
from pydantic import TypeAdapter
from pydantic_core import to_json

from schemas.alerts import DealAlert
from schemas.clock import ClockTick
from schemas.deal_events import DealStage
from worker.domain.alerts import AlertTrack
from worker.domain.batch import Incoming
from worker.domain.clock import AgingDeal, age_deals
from worker.domain.deal import DealState, unvalidated
from worker.domain.deal_batch import DealBatchOutcome, StoredDeal
from worker.engine import DealFacts, DealScore, DealValuePrediction, Framework
from worker.engine.deal import fast_constructor
from worker.log import get_logger
from worker.models.deal_scoring import HEURISTIC, DealModels, LearnedClose
from worker.store import outbox
from worker.store.clock import due_pages
from worker.store.upsert import CopyUpsert, insert_from_json, rows_json, update_by_copy

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
    "field_times": "jsonb",
    "merged_into": "text",
    "incomplete": "boolean",
}
SCORE_COLUMNS: dict[str, str] = {
    "health_score": "smallint",
    "health_category": "text",
    "close_probability": "numeric",
    "risk_factors": "jsonb",
    "score_details": "json",  # written whole, read whole: validated text (sql/023)
    "framework_version": "text",
    "scored_at": "timestamptz",
    "predicted_amount": "numeric",
    # the close probability's model ('heuristic': the framework) and the challenger's beside it
    "prob_model_version": "text",
    "challenger_probability": "numeric",
    "challenger_version": "text",
}
ALERT_COLUMNS: dict[str, str] = {"alert_level": "text", "alert_ref_probability": "numeric"}
# the partition of the deal topic the deal's events arrive on (ticks there age it); kept when
# a write does not know it (``revintel rescore``)
ROUTING_COLUMNS: dict[str, str] = {"source_partition": "integer"}
COLUMNS = {**STATE_COLUMNS, **SCORE_COLUMNS, **ALERT_COLUMNS, **ROUTING_COLUMNS}
PROBABILITY_COLUMNS = ("close_probability", "challenger_probability", "alert_ref_probability")
assert set(STATE_COLUMNS) == set(DealState.model_fields), "deals columns out of step"

# The probabilities (Python floats, numeric(5, 2) columns) COPYed as float8 and rounded by
# the assignment: as numeric, each went through a Decimal of its repr (most of a row's
# encoding); rounded to two places either way (a float of at most 15 significant digits
# reads back the same)
UPSERT_DEALS = CopyUpsert(
    "deals",
    {**COLUMNS, **dict.fromkeys(PROBABILITY_COLUMNS, "float8")},
    conflict=("deal_id",),
    update=[c for c in COLUMNS if c != "deal_id"],
    keep_if_null=ROUTING_COLUMNS,
)
_STINT_COLUMNS = {"deal_id": "text", "stage": "text", "entered_at": "timestamptz"}
# Each deal's running stint (at most one: the open-stint index is unique) probed by that index
# and updated by its ctid, whatever the statistics: joined as a set, the planner hashed the
# open stints or the whole history (a sequential scan per batch as the table grew). The
# deal's row lock, taken first, keeps its stints from changing under the ctid.
CLOSE_STINTS = """
UPDATE deal_stage_history h SET left_at = f.first_entered
FROM unnest($1::text[], $2::timestamptz[]) AS f(deal_id, first_entered)
CROSS JOIN LATERAL (
    SELECT o.ctid AS running FROM deal_stage_history o
    WHERE o.deal_id = f.deal_id AND o.left_at IS NULL AND o.entered_at < f.first_entered
    LIMIT 1
) o
WHERE h.ctid = o.running
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


def _track(record: asyncpg.Record) -> AlertTrack:
    """The alert track stored on a deal's row."""
    return AlertTrack(
        level=record["alert_level"],
        ref_probability=_optional_float(record["alert_ref_probability"]),
        health_score=record["health_score"],
        health_category=record["health_category"],
        close_probability=_optional_float(record["close_probability"]),
    )


_FIELD_TIMES = TypeAdapter(dict[str, datetime])


def _stored(record: asyncpg.Record) -> StoredDeal:
    """A locked row as the fold's input. The row was validated when it was written: only
    what its columns do not carry as the model holds it is converted (the stage's enum, the
    competitors' tuple, the field times, parsed as validation parses them), and the model is
    built without validating again (half the time; tests/store/test_deal_rows.py compares)."""
    data = {c: record[c] for c in STATE_COLUMNS}
    data["stage"] = DealStage(data["stage"])
    data["competitors"] = tuple(data["competitors"] or ())
    data["field_times"] = _FIELD_TIMES.validate_json(data["field_times"])  # jsonb as text
    return StoredDeal(unvalidated(data), _track(record))


_TOMBSTONE_COLUMNS = ("deal_id", "merged_into", "last_event_id", "last_event_time")
_LOAD_TYPES = {
    **STATE_COLUMNS,
    **ALERT_COLUMNS,
    **{c: SCORE_COLUMNS[c] for c in ("health_score", "health_category", "close_probability")},
}
assert ", ".join(_LOAD_TYPES) == _LOAD_COLUMNS
_AS_TOMBSTONE = ", ".join(
    f"m.{c}" if c in _TOMBSTONE_COLUMNS else f"NULL::{t}" for c, t in _LOAD_TYPES.items()
)
# The deals' rows, locked in id order, and in the same round trip the tombstones of those
# not found that were merged into others (their events are stale), as rows of the same shape
LOCK = f"""
WITH locked AS (
    SELECT {_LOAD_COLUMNS} FROM deals WHERE deal_id = ANY($1::text[])
    ORDER BY deal_id FOR UPDATE
)
SELECT *, false AS tombstone FROM locked
UNION ALL
SELECT {_AS_TOMBSTONE}, true FROM merged_deals m
WHERE m.deal_id = ANY($1::text[]) AND NOT EXISTS (SELECT FROM locked l WHERE l.deal_id = m.deal_id)
"""


async def lock(conn: asyncpg.Connection, deal_ids: Sequence[str]) -> dict[str, StoredDeal]:
    """Current state of these deals, row-locked until the transaction ends (a rebalance may
    briefly give two workers the same partition; the lock orders their writes), and the
    tombstones of those merged into others."""
    rows = await conn.fetch(LOCK, list(deal_ids))
    return {r["deal_id"]: _tombstone(r) if r["tombstone"] else _stored(r) for r in rows}


def _tombstone(record: asyncpg.Record) -> StoredDeal:
    """A deal merged into another: its events are stale."""
    at = record["last_event_time"]
    fields = {c: record[c] for c in _TOMBSTONE_COLUMNS}
    return StoredDeal(DealState(**fields, created_at=at, stage_entered_at=at), AlertTrack())


MERGE_DEALS = """
WITH m AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS r(deal_id text, merged_into text, last_event_id text, last_event_time timestamptz)
), gone AS (
    DELETE FROM deals d USING m WHERE d.deal_id = m.deal_id
), history AS (
    DELETE FROM deal_stage_history h USING m WHERE h.deal_id = m.deal_id
)
INSERT INTO merged_deals SELECT deal_id, merged_into, last_event_id, last_event_time FROM m
ON CONFLICT (deal_id) DO NOTHING
"""


async def record_merges(conn: asyncpg.Connection, states: Sequence[DealState]) -> None:
    """Deals merged into others leave ``deals`` and their stage history for a tombstone."""
    keep = ("deal_id", "merged_into", "last_event_id", "last_event_time")
    await conn.execute(MERGE_DEALS, rows_json({k: getattr(s, k) for k in keep} for s in states))


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
    partition: int | None = None,
    learned: LearnedClose | None = None,
) -> dict[str, Any]:
    """The ``deals`` row of a scored state."""
    row = dict(state.__dict__)  # its fields as they are (model_dump copies deeply: slower)
    row["source_partition"] = partition
    row["competitors"] = list(state.competitors)
    row.update(score_columns(score, track, state.last_event_time, learned))
    row["predicted_amount"] = None
    if prediction is not None:
        row["predicted_amount"] = prediction.predicted_value
        row["score_details"]["value"] = prediction.model_dump()
    if state.incomplete:  # its creation not seen: no score to show, count or alert on
        row.update(UNSCORED)
    return row


UNSCORED = {
    "health_score": None,
    "health_category": None,
    "close_probability": None,
    "risk_factors": [],
    "score_details": None,
    "predicted_amount": None,
    "challenger_probability": None,
}


def probability_details(score: DealScore, learned: LearnedClose | None) -> dict[str, Any]:
    """``score_details -> 'probability'``: the framework's, or the learned model's probability
    with its factors in words as ``key_factors`` (raises, then lowers), the framework's kept
    under ``heuristic``."""
    heuristic = score.probability.to_dict()
    if learned is None:
        return heuristic
    return {
        **learned.to_dict(),
        "key_factors": learned.explanation.key_factors,
        "heuristic": heuristic,
    }


def score_columns(
    score: DealScore, track: AlertTrack, scored_at: datetime, learned: LearnedClose | None = None
) -> dict[str, Any]:
    """The score and alert columns of a deal scored at ``scored_at`` (its close probability
    the learned model's when given)."""
    probability = score.probability.probability if learned is None else learned.probability
    return {
        "health_score": score.health.score,
        "health_category": score.health.category,
        "close_probability": round(probability, 2),
        "prob_model_version": HEURISTIC if learned is None else learned.version,
        "challenger_probability": None if learned is None else learned.challenger_probability,
        "challenger_version": None if learned is None else learned.challenger_version,
        "risk_factors": list(score.health.risk_factors),
        "score_details": {
            "health": score.health.to_dict(),
            "probability": probability_details(score, learned),
        },
        "framework_version": score.framework_version,
        "scored_at": scored_at,
        "alert_level": track.level,
        "alert_ref_probability": (
            None if track.ref_probability is None else round(track.ref_probability, 2)
        ),
    }


async def upsert(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """The new state and scores of every deal the outcome changed."""
    rows = (
        deal_row(
            s,
            outcome.scores[d],
            outcome.tracks[d],
            outcome.predictions.get(d),
            outcome.partitions.get(d),
            outcome.learned.get(d),
        )
        for d, s in outcome.states.items()
        if s.merged_into is None
    )
    await UPSERT_DEALS.execute(conn, rows)


async def record_stints(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """Close each deal's running stint where a new one starts, then add the new ones."""
    new = outcome.new_stints()
    first: dict[str, datetime] = {}
    for s in new:  # by deal and entry time: the first is each deal's earliest
        first.setdefault(s.deal_id, s.entered_at)
    await conn.execute(CLOSE_STINTS, list(first), list(first.values()))
    await conn.execute(
        INSERT_STINTS,
        rows_json(
            {
                "deal_id": s.deal_id,
                "stage": s.stage,
                "entered_at": s.entered_at,
                "left_at": s.left_at,
            }
            for s in new
        ),
    )


async def write(conn: asyncpg.Connection, outcome: DealBatchOutcome) -> None:
    """Everything a deal batch changes, in the caller's transaction."""
    _model_failed(outcome.model_error)
    if outcome.states:
        await upsert(conn, outcome)
    if outcome.stints:
        await record_stints(conn, outcome)
    if outcome.alerts:
        await outbox.insert(conn, outcome.alerts)
    if gone := [s for s in outcome.states.values() if s.merged_into is not None]:
        await record_merges(conn, gone)  # last: after this batch's rows and stints


log = get_logger(component="deals")


# -- the clock ---------------------------------------------------------------------------------

AGE_PAGE = 5000  # open deals per transaction when a tick ages a partition

# an open deal's columns as the clock reads them, in the order ``_aging_deal`` unpacks them
_AGING_FIELDS = (
    "deal_id", "name", "company", "owner", "amount", "currency", "stage", "industry",
    "lead_score", "interactions", "objections_handled", "has_champion", "budget_confirmed",
    "decision_maker_engaged", "competitors", "last_activity_at", "stage_entered_at",
    "created_at", "expected_close_date", "close_date_pushes", "alert_level",
    "alert_ref_probability", "health_score", "health_category", "close_probability",
)  # fmt: skip
# the competitors counted; the probabilities as float8 (a numeric decodes through a Decimal)
_AGING_READ = {
    "competitors": "cardinality(competitors)",
    "alert_ref_probability": "alert_ref_probability::float8",
    "close_probability": "close_probability::float8",
}
_AGING = f"""
SELECT {", ".join(f"{_AGING_READ[c]} AS {c}" if c in _AGING_READ else c for c in _AGING_FIELDS)},
       scored_at
FROM deals
WHERE source_partition = $1 AND deal_id > $2 AND stage NOT IN ('closed_won', 'closed_lost')
    AND NOT incomplete
ORDER BY deal_id LIMIT $3 FOR UPDATE
"""
# the score and alert columns a tick (or a rescoring) writes, as COPYed into the temp table:
# the probabilities as float8 (binary as they are; a Python float as numeric went through a
# Decimal per value: three quarters of the COPY's encoding), rounded to numeric(5, 2) by the
# assignment as numeric's own input rounds them
AGED_COLUMNS = {"deal_id": "text", **SCORE_COLUMNS, **ALERT_COLUMNS}
AGED_COLUMNS.pop("predicted_amount")
AGED_COLUMNS.update(dict.fromkeys(PROBABILITY_COLUMNS, "float8"))
AGED_ASSIGN = {
    **{c: f"r.{c}" for c in AGED_COLUMNS if c not in ("deal_id", "score_details")},
    # a prediction of the value (deals without amount only) does not age: keep it
    "score_details": "CASE WHEN t.amount IS NULL THEN (r.score_details::jsonb || jsonb_strip_nulls("
    "jsonb_build_object('value', t.score_details -> 'value')))::json ELSE r.score_details END",
}
_aged_values = itemgetter(*[c for c in AGED_COLUMNS if c != "deal_id"])
SNAPSHOT_COLUMNS = (
    "deal_id, name, company, owner, industry, amount, predicted_amount, currency, stage, "
    "expected_close_date, lead_score, interactions, objections_handled, has_champion, "
    "budget_confirmed, decision_maker_engaged, last_activity_at, close_date_pushes, "
    "created_at, stage_entered_at, health_score, health_category, close_probability, "
    "alert_level, framework_version, prob_model_version, challenger_probability, "
    "challenger_version"
)
SNAPSHOT = f"""
INSERT INTO deal_snapshots (snapshot_date, taken_at, competitors, {SNAPSHOT_COLUMNS})
SELECT ($2 AT TIME ZONE 'UTC')::date, $2, cardinality(competitors), {SNAPSHOT_COLUMNS}
FROM deals
WHERE deal_id = ANY($1::text[]) AND stage NOT IN ('closed_won', 'closed_lost')
ON CONFLICT (snapshot_date, deal_id) DO UPDATE SET
    taken_at = EXCLUDED.taken_at, competitors = EXCLUDED.competitors,
    {", ".join(f"{c} = EXCLUDED.{c}" for c in SNAPSHOT_COLUMNS.split(", ") if c != "deal_id")}
"""
_STAGES = {s.value: s for s in DealStage}  # a dict lookup: a tenth of the enum's call
_new_facts = fast_constructor(DealFacts)
_new_track = fast_constructor(AlertTrack)
_new_aging = fast_constructor(AgingDeal)
_aging_values = itemgetter(*_AGING_FIELDS)


def aging_deal(r: asyncpg.Record) -> AgingDeal:
    """An open deal's row (``_AGING``'s columns, competitors counted) as the clock's input."""
    return _aging_deal(_aging_values(r))


def _aging_deal(values: tuple[Any, ...]) -> AgingDeal:
    """An open deal's ``_aging_values`` as the clock's input: built positionally, without a
    pydantic model or an enum call per row (a tick may age a million deals)."""
    (deal_id, name, company, owner, amount, currency, stage, industry, lead_score, interactions,
     objections, champion, budget, decision_maker, competitors, last_activity_at,
     stage_entered_at, created_at, expected_close_date, pushes, level, ref_probability,
     health_score, health_category, probability) = values  # fmt: skip
    stage = _STAGES[stage]
    facts = _new_facts(
        stage,
        None if amount is None else float(amount),
        industry,
        lead_score,
        interactions,
        objections,
        champion,
        budget,
        decision_maker,
        competitors,
        last_activity_at,
        stage_entered_at,
        created_at,
        expected_close_date,
        pushes,
    )
    track = _new_track(
        level,
        None if ref_probability is None else float(ref_probability),
        health_score,
        health_category,
        None if probability is None else float(probability),
    )
    return _new_aging(deal_id, name, company, owner, amount, currency, stage, facts, track)


def _model_failed(error: str | None) -> None:
    if error:
        log.error("deal_model_failed", error=error, fallback=HEURISTIC)


def aged_record(
    deal_id: str,
    score: DealScore,
    track: AlertTrack,
    now: datetime,
    learned: LearnedClose | None = None,
) -> tuple[Any, ...]:
    """A deal's new score and alert columns, in ``AGED_COLUMNS`` order (json as text)."""
    columns = score_columns(score, track, now, learned)
    columns["risk_factors"] = to_json(columns["risk_factors"]).decode()
    columns["score_details"] = to_json(columns["score_details"]).decode()
    return (deal_id, *_aged_values(columns))


def aged_records(page: DealBatchOutcome, now: datetime) -> list[tuple[Any, ...]]:
    """The ``aged_record`` of every deal ``page`` scored as of ``now``."""
    return [
        aged_record(d, score, page.tracks[d], now, page.learned.get(d))
        for d, score in page.scores.items()
    ]


async def write_scores(conn: asyncpg.Connection, page: DealBatchOutcome, now: datetime) -> None:
    """The new scores of open deals scored as of ``now`` (a rescoring)."""
    if page.scores:
        records = aged_records(page, now)
        await update_by_copy(conn, "deals", "deal_id", AGED_COLUMNS, records, AGED_ASSIGN)


@dataclass(frozen=True, slots=True)
class ScoredPage:
    """A tick's page scored: the ``AGED_COLUMNS`` records to write, the alerts raised, in the
    page's order."""

    records: list[tuple[Any, ...]]
    alerts: list[DealAlert]
    aged: int
    model_error: str | None


def score_page(
    values: Sequence[tuple[Any, ...]],
    tick: Incoming[ClockTick],
    framework: Framework,
    deal_models: DealModels | None = None,
) -> ScoredPage:
    """The pure part of a tick's page: open deals (``_aging_values`` of their rows) scored as
    of the tick, their alert transitions and their new score columns."""
    page = age_deals([_aging_deal(v) for v in values], tick, framework, deal_models)
    records = aged_records(page, tick.event.time)
    return ScoredPage(records, page.alerts, page.aged, page.model_error)


async def age(
    pool: asyncpg.Pool,
    partition: int,
    tick: Incoming[ClockTick],
    framework: Framework,
    deal_models: DealModels | None = None,
    *,
    writing: asyncio.Lock | None = None,
) -> DealBatchOutcome:
    """Rescore the open deals of ``partition`` as of the tick (the close probability the
    learned champion's when there is one), raise their alert transitions and snapshot them, a
    page per transaction. Deals already scored at or after the tick (a page redone after a
    crash, or an event newer than the tick) keep their scores."""
    out = DealBatchOutcome()
    now = tick.event.time
    turn = writing or asyncio.Lock()  # alone: no other tick's page to wait for
    async for conn, due, rows in due_pages(pool, _AGING, partition, "deal_id", AGE_PAGE, now):
        # in a thread: the model's trees and numpy let go of the interpreter, so the other
        # partitions' pages are read, encoded and written meanwhile
        values = [_aging_values(r) for r in due]
        page = await asyncio.to_thread(score_page, values, tick, framework, deal_models)
        _model_failed(page.model_error)
        async with turn:  # one page written at a time (see store.batches.age_side_by_side)
            if page.records:
                await update_by_copy(
                    conn, "deals", "deal_id", AGED_COLUMNS, page.records, AGED_ASSIGN
                )
            if page.alerts:
                await outbox.insert(conn, page.alerts)
            await conn.execute(SNAPSHOT, [r["deal_id"] for r in rows], now)
        out.alerts.extend(page.alerts)  # not the scores: a tick may age a million deals
        out.aged += page.aged
    return out
