"""A tick's page as the store writes it (rows read positionally, probabilities COPYed as float8
and rounded by the column) is what the engine and the alert rules give for the deals' states
read the slow way: same scores, factors, alert levels and alert ids, in order (real
PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.clock import make_tick
from schemas.deal_events import OPEN_STAGES
from worker.domain.batch import Incoming, RecordRef
from worker.domain.deal_batch import AgingDeal, alert_rules, apply_deal_batch, facts_of, reassess
from worker.engine import load_framework, score_deal
from worker.store import deals
from worker.testdata.seed import generate_deals

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
TOPIC = "test.deal-ageing"


def _incoming(prefix: str) -> list[Incoming]:
    ref = RecordRef("deals", 0, 0, None, None, ())
    return [
        Incoming(
            e.model_copy(update={"subject": f"{prefix}{e.subject}", "id": f"{prefix}{e.id}"}), ref
        )
        for e in generate_deals(150, 7, AS_OF)
    ]


def _cents(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(f"{round(x, 2):.2f}")


async def test_a_ticks_page_is_what_the_engine_gives_for_the_states(db):
    framework = load_framework()
    prefix = f"ageing-{uuid.uuid4().hex[:6]}-"
    partition = 100_000 + uuid.uuid4().int % 1_000_000  # ours alone in the shared database
    written = apply_deal_batch({}, (), _incoming(prefix), framework)
    aging = {
        d: s
        for d, s in written.states.items()
        if s.stage in OPEN_STAGES and not s.incomplete and s.merged_into is None
    }
    assert len(aging) > 50
    tick = Incoming(
        make_tick(AS_OF + timedelta(days=30), TOPIC, partition, 86400),
        RecordRef(TOPIC, partition, 0, b"clock", None, ()),
    )
    now = tick.event.time
    like = f"{prefix}%"
    try:
        async with db.acquire() as conn, conn.transaction():
            await deals.write(conn, written)
            await conn.execute(
                "UPDATE deals SET source_partition = $1 WHERE deal_id LIKE $2", partition, like
            )
        out = await deals.age(db, partition, tick, framework)
        rows = {
            r["deal_id"]: r
            for r in await db.fetch("SELECT * FROM deals WHERE deal_id LIKE $1", like)
        }
        outbox = await db.fetch(
            "SELECT alert_id::text FROM alert_outbox WHERE deal_id LIKE $1 ORDER BY seq", like
        )
        snapshots = await db.fetchval(
            "SELECT count(*) FROM deal_snapshots WHERE deal_id LIKE $1 AND taken_at = $2",
            like,
            now,
        )
    finally:
        for table in ("alert_outbox", "deal_snapshots", "deal_stage_history", "deals"):
            await db.execute(f"DELETE FROM {table} WHERE deal_id LIKE $1", like)

    rules = alert_rules(framework)
    expected_alerts = []
    for deal_id in sorted(aging):  # a page goes by deal id
        state, row = aging[deal_id], rows[deal_id]
        score = score_deal(facts_of(state), now, framework)
        deal = AgingDeal(
            deal_id,
            state.name,
            state.company,
            state.owner,
            state.amount,
            state.currency,
            state.stage,
            facts_of(state),
            written.tracks[deal_id],
        )
        track, alert = reassess(written.tracks[deal_id], rules, deal, score, tick)
        if alert:
            expected_alerts.append(alert.alert_id)
        assert row["scored_at"] == now
        assert row["health_score"] == score.health.score
        assert row["health_category"] == score.health.category
        assert row["close_probability"] == _cents(score.probability.probability)
        assert json.loads(row["risk_factors"]) == list(score.health.risk_factors)
        details = json.loads(row["score_details"])
        assert details["health"] == json.loads(json.dumps(score.health.to_dict()))
        assert details["probability"] == json.loads(json.dumps(score.probability.to_dict()))
        assert row["alert_level"] == track.level
        assert row["alert_ref_probability"] == _cents(track.ref_probability)
    assert out.aged == len(aging) and snapshots == len(aging)
    assert expected_alerts, "the tick raised no alert: the comparison would be thin"
    assert [a["alert_id"] for a in outbox][-len(expected_alerts) :] == expected_alerts
    assert [a.alert_id for a in out.alerts] == expected_alerts


async def test_a_page_is_written_only_in_its_turn(db):
    """The ticks of a batch age side by side but write one page at a time (the lock they
    share): while another tick's page holds it, this page is read and scored, and nothing of
    it is written; released, every deal is aged."""
    framework = load_framework()
    prefix = f"turn-{uuid.uuid4().hex[:6]}-"
    partition = 100_000 + uuid.uuid4().int % 1_000_000
    written = apply_deal_batch({}, (), _incoming(prefix), framework)
    tick = Incoming(
        make_tick(AS_OF + timedelta(days=30), TOPIC, partition, 86400),
        RecordRef(TOPIC, partition, 0, b"clock", None, ()),
    )
    like = f"{prefix}%"
    aged_sql = "SELECT count(*) FROM deals WHERE deal_id LIKE $1 AND scored_at = $2"
    turn = asyncio.Lock()
    try:
        async with db.acquire() as conn, conn.transaction():
            await deals.write(conn, written)
            await conn.execute(
                "UPDATE deals SET source_partition = $1 WHERE deal_id LIKE $2", partition, like
            )
        async with turn:  # another tick's page is being written
            ageing = asyncio.create_task(deals.age(db, partition, tick, framework, writing=turn))
            await asyncio.sleep(1.0)  # unheld, the page is written and committed long before
            assert not ageing.done()
            assert await db.fetchval(aged_sql, like, tick.event.time) == 0
        out = await asyncio.wait_for(ageing, 30)
        assert out.aged > 50
        assert await db.fetchval(aged_sql, like, tick.event.time) == out.aged
    finally:
        for table in ("alert_outbox", "deal_snapshots", "deal_stage_history", "deals"):
            await db.execute(f"DELETE FROM {table} WHERE deal_id LIKE $1", like)
