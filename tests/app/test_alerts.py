"""Alerts through the real pipeline: transitions only, outbox survives a crash, no doubles."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import replace
from datetime import date, timedelta

import pytest

from schemas.alerts import DealAlert
from schemas.deal_events import DealStage
from tests.factories import T0, created, event
from tests.services import (
    assert_graceful_exit,
    eventually,
    group_caught_up,
    publish,
    read_all,
    spawn,
    unique,
    worker_env,
)
from worker.engine import DealFacts, DealScore, load_framework, score_deal

pytestmark = pytest.mark.integration


def decline_to_won(deal: str) -> list:
    """A large, qualified proposal that goes quiet until critical, then is won."""
    return [
        created(
            deal,
            amount=80_000,
            stage="proposal",
            budget_confirmed=True,
            has_champion=True,
            decision_maker_engaged=True,
            expected_close_date="2026-05-15",
            lead_score=80,
        ),
        event(deal, "activity_logged", {"kind": "meeting"}, day=1),
        event(deal, "updated", {"lead_score": 80}, day=20),
        event(deal, "updated", {"lead_score": 80}, day=40),
        event(deal, "updated", {"lead_score": 80}, day=80),
        event(deal, "closed_won", {"amount": 82_000}, day=81),
    ]


def decline_to_won_scores() -> list[DealScore]:
    """The engine's scores after each event of ``decline_to_won``, with the deal's facts
    written out by hand (not merged by the worker), each scored as of its event's time."""
    created_facts = DealFacts(
        stage=DealStage.proposal,
        amount=80_000.0,
        industry="technology",
        lead_score=80,
        interactions=0,
        objections_handled=0,
        has_champion=True,
        budget_confirmed=True,
        decision_maker_engaged=True,
        competitors=0,
        last_activity_at=None,
        stage_entered_at=T0,
        created_at=T0,
        expected_close_date=date(2026, 5, 15),
        close_date_pushes=0,
    )
    active = replace(created_facts, interactions=1, last_activity_at=T0 + timedelta(days=1))
    won = replace(
        active, stage=DealStage.closed_won, amount=82_000.0, stage_entered_at=T0 + timedelta(81)
    )
    framework = load_framework()
    steps = [(created_facts, 0), (active, 1), (active, 20), (active, 40), (active, 80), (won, 81)]
    return [score_deal(f, T0 + timedelta(days=d), framework) for f, d in steps]


def alerts_of(records) -> list[DealAlert]:
    return [DealAlert.model_validate_json(r.value) for r in records]


async def test_health_decline_then_win_raises_exactly_the_transitions(
    settings, start_worker, producer, db
):
    deal = unique("AL")
    events = decline_to_won(deal)
    scores = decline_to_won_scores()
    # precondition: the engine sees healthy -> warning -> critical -> won
    assert [s.health.category for s in scores[1:5]] == ["healthy", "warning", "warning", "critical"]
    await start_worker(settings)
    await publish(producer, settings.deal_topic, events)

    async def three_alerts():
        return len(await read_all(settings.kafka_bootstrap_servers, settings.alerts_topic)) >= 3

    await eventually(three_alerts)
    records = await read_all(settings.kafka_bootstrap_servers, settings.alerts_topic)
    alerts = alerts_of(records)
    assert [(a.kind, a.level) for a in alerts] == [
        ("at_risk", "at_risk"),
        ("escalated", "critical"),
        ("resolved", "none"),
    ]
    assert [a.caused_by.event_id for a in alerts] == [events[2].id, events[4].id, events[5].id]
    first = alerts[0]
    assert first.deal_id == deal and first.company == "Acme" and first.owner == "Ana"
    assert float(first.value) == 80_000 and first.currency == "USD"
    assert first.previous.level == "none" and first.previous.health_category == "healthy"
    assert first.health_category == "warning" and first.risk_factors
    assert first.occurred_at == events[2].time
    assert alerts[1].previous.level == "at_risk"
    assert alerts[2].reasons == ["Deal won"] and alerts[2].close_probability == 100
    # each alert carries the scores of its event and of the one before, as the engine gives
    # them for the hand-written facts
    for alert, step in zip(alerts, (2, 4, 5), strict=True):
        now, prev = scores[step], scores[step - 1]
        assert (alert.health_score, alert.health_category) == (
            now.health.score,
            now.health.category,
        )
        assert alert.close_probability == pytest.approx(now.probability.probability, abs=0.01)
        assert alert.risk_factors == list(now.health.risk_factors)
        assert (alert.previous.health_score, alert.previous.health_category) == (
            prev.health.score,
            prev.health.category,
        )
        assert alert.previous.close_probability == pytest.approx(
            prev.probability.probability, abs=0.01
        )
    for record, alert in zip(records, alerts, strict=True):
        assert record.key == deal.encode()
        assert dict(record.headers)["alert_id"].decode() == alert.alert_id
    await eventually(lambda: _no_pending(db, deal))  # marked just after the broker's ack
    assert await db.fetchval("SELECT alert_level FROM deals WHERE deal_id = $1", deal) == "none"


async def test_same_batch_twice_gives_one_state_change_and_one_alert(
    settings, start_worker, producer, db
):
    deal = unique("AD")
    events = decline_to_won(deal)[:3]  # ends at risk
    worker = await start_worker(settings)
    await publish(producer, settings.deal_topic, events)
    await publish(producer, settings.deal_topic, events)

    async def caught_up():
        return await group_caught_up(
            settings.kafka_bootstrap_servers, settings.consumer_group, settings.deal_topic
        )

    await eventually(caught_up)
    await eventually(lambda: _no_pending(db, deal))
    assert worker.deals.stats["applied"] == 3 and worker.deals.stats["duplicates"] == 3
    alerts = alerts_of(await read_all(settings.kafka_bootstrap_servers, settings.alerts_topic))
    assert [a.kind for a in alerts] == ["at_risk"]
    assert await db.fetchval("SELECT count(*) FROM applied_events WHERE deal_id = $1", deal) == 3


async def _no_pending(db, deal: str) -> bool:
    return not await db.fetchval(
        "SELECT count(*) FROM alert_outbox WHERE deal_id = $1 AND published_at IS NULL", deal
    )


async def test_alert_survives_a_kill_between_commit_and_publish(settings, producer, db):
    deal = unique("AK")
    events = decline_to_won(deal)[:3]
    env = worker_env(settings)
    doomed = await spawn("run", env={**env, "REVINTEL_CRASH_POINT": "after_commit"})
    await publish(producer, settings.deal_topic, events)
    out, _ = await asyncio.wait_for(doomed.communicate(), 90)
    assert doomed.returncode == -signal.SIGKILL, out.decode()[-2000:]

    # The state and the alert were committed together; nothing reached the alerts topic.
    row = await db.fetchrow(
        "SELECT kind, published_at, payload FROM alert_outbox WHERE deal_id = $1", deal
    )
    assert row["kind"] == "at_risk" and row["published_at"] is None
    assert await read_all(settings.kafka_bootstrap_servers, settings.alerts_topic) == []

    survivor = await spawn("run", env=env)
    try:
        await eventually(lambda: _no_pending(db, deal), within=60)

        async def caught_up():
            return await group_caught_up(
                settings.kafka_bootstrap_servers, settings.consumer_group, settings.deal_topic
            )

        await eventually(caught_up, within=60)
    finally:
        survivor.send_signal(signal.SIGTERM)
        log, _ = await asyncio.wait_for(survivor.communicate(), 60)
    assert_graceful_exit(survivor, log.decode())
    alerts = alerts_of(await read_all(settings.kafka_bootstrap_servers, settings.alerts_topic))
    assert [a.kind for a in alerts] == ["at_risk"]
    assert alerts[0].alert_id == json.loads(row["payload"])["alert_id"]
    # the redelivered batch changed nothing
    assert await db.fetchval("SELECT count(*) FROM applied_events WHERE deal_id = $1", deal) == 3
