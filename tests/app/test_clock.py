"""Clock ticks through the real worker: a quiet deal ages, raises its alert and is snapshotted;
ticks are applied once, in their partition's order; a replay of events and ticks from offset 0
gives the same state, snapshots and alert ids."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest

from tests.factories import T0, created, event
from tests.services import eventually, fresh_database, publish, unique
from worker.app import Worker
from worker.engine import load_framework, score_deal
from worker.kafka.producer import durable_producer
from worker.kafka.ticks import publish_tick
from worker.kafka.topics import ensure_topics
from worker.store import deals as deal_store

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def tick(settings, at, topics=None) -> None:
    producer = durable_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await publish_tick(producer, topics or [settings.deal_topic], at, DAY)
    finally:
        await producer.stop()


async def ticks_applied(db, settings, at) -> bool:
    n = await db.fetchval(
        "SELECT count(*) FROM clock WHERE topic = $1 AND last_tick >= $2", settings.deal_topic, at
    )
    return n == settings.topic_partitions


async def test_a_quiet_deal_ages_and_raises_its_alert(settings, start_worker, producer, db):
    deal = unique("CLK")
    # the same deal seen only through a change (its creation never came): incomplete, not aged
    partial = unique("CLKI")
    worker = await start_worker(settings)
    await ensure_topics(settings.kafka_bootstrap_servers, [settings.deal_topic], 3)
    await publish(
        producer,
        settings.deal_topic,
        [
            created(deal, amount=90_000, stage="proposal", budget_confirmed=True),
            event(deal, "activity_logged", {"kind": "call"}, day=1),
            event(partial, "stage_changed", {"stage": "proposal", "amount": 90_000}, day=1),
        ],
    )

    async def applied() -> bool:
        return (
            await db.fetchval(
                "SELECT count(*) FROM deals WHERE deal_id = ANY($1::text[])", [deal, partial]
            )
            == 2
        )

    await eventually(applied)
    before = await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", deal)
    assert before["alert_level"] == "none" and before["scored_at"] == T0 + DAY

    quiet = T0 + 45 * DAY
    await tick(settings, quiet)
    await eventually(lambda: ticks_applied(db, settings, quiet))
    after = await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", deal)
    # rescored as of the tick: 44 days without activity, 45 days in proposal
    assert after["scored_at"] == quiet and after["last_event_time"] == T0 + DAY
    assert after["health_score"] < before["health_score"]
    assert "No activity for 44 days" in json.loads(after["risk_factors"])
    expected = score_deal(
        deal_store.aging_deal(
            await db.fetchrow(
                "SELECT *, cardinality(competitors) AS competitors FROM deals WHERE deal_id = $1",
                deal,
            )
        ).facts,
        quiet,
        load_framework(),
    )
    assert after["health_score"] == expected.health.score
    assert after["alert_level"] in ("at_risk", "critical")
    alerts = await db.fetch("SELECT * FROM alert_outbox WHERE deal_id = $1", deal)
    assert [a["kind"] for a in alerts] == ["at_risk"]
    assert '"event_type": "clock.tick"' in alerts[0]["payload"]
    snap = await db.fetchrow(
        "SELECT * FROM deal_snapshots WHERE deal_id = $1 AND snapshot_date = $2",
        deal,
        quiet.date(),
    )
    assert snap["taken_at"] == quiet and snap["health_score"] == after["health_score"]
    assert snap["stage"] == "proposal" and snap["amount"] == 90_000
    unaged = await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", partial)
    assert unaged["incomplete"] and unaged["scored_at"] == T0 + DAY
    assert (unaged["health_score"], unaged["alert_level"]) == (None, "none")
    assert not await db.fetchval("SELECT count(*) FROM deal_snapshots WHERE deal_id = $1", partial)
    assert not await db.fetchval("SELECT count(*) FROM alert_outbox WHERE deal_id = $1", partial)

    # the same tick again: a duplicate; an older one: stale; neither changes the deal
    await tick(settings, quiet)
    await tick(settings, quiet - 10 * DAY)

    async def skipped() -> bool:
        s = worker.deals.stats
        return s["duplicates"] >= 3 and s["stale"] >= 3

    await eventually(skipped)
    again = await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", deal)
    assert again["scored_at"] == quiet and again["health_score"] == after["health_score"]
    assert await db.fetchval("SELECT count(*) FROM alert_outbox WHERE deal_id = $1", deal) == 1


async def _state(url: str, prefix: str) -> tuple[list, list, list]:
    conn = await asyncpg.connect(url)
    try:
        deals = await conn.fetch(
            "SELECT * FROM deals WHERE deal_id LIKE $1 || '%' ORDER BY deal_id", prefix
        )
        snaps = await conn.fetch(
            "SELECT * FROM deal_snapshots WHERE deal_id LIKE $1 || '%' "
            "ORDER BY snapshot_date, deal_id",
            prefix,
        )
        alerts = await conn.fetch(
            "SELECT alert_id, deal_id, kind, payload FROM alert_outbox "
            "WHERE deal_id LIKE $1 || '%' ORDER BY alert_id",  # seq interleaves partitions
            prefix,
        )
    finally:
        await conn.close()
    strip = lambda rows: [{k: v for k, v in dict(r).items() if k != "updated_at"} for r in rows]  # noqa: E731
    return strip(deals), [dict(r) for r in snaps], [dict(r) for r in alerts]


async def test_replaying_events_and_ticks_gives_the_same_state(settings, producer, services):
    from worker.testdata.seed import generate_deals

    p = unique("RPL")
    events = [
        e.model_copy(update={"subject": f"{p}-{e.subject}", "id": f"{p}-{e.id}"})
        for e in generate_deals(30, 7, T0)
    ]
    events.sort(key=lambda e: e.time)
    await ensure_topics(settings.kafka_bootstrap_servers, [settings.deal_topic], 3)
    from worker.cli.data import publish as publish_with_ticks
    from worker.kafka.ticks import tick_instants

    instants = tick_instants(events[0].time, events[-1].time + 20 * DAY, DAY)
    await publish_with_ticks(events, settings=settings, ticks=instants)

    states = []
    for _ in range(2):
        async with fresh_database(services.database_url, "revintel_replay") as url:
            s = settings.model_copy(update={"database_url": url, "consumer_group": unique("g")})
            worker = Worker(s)
            await worker.start()
            await worker.broker.start()

            async def caught_up(url=url, s=s) -> bool:
                conn = await asyncpg.connect(url)
                try:
                    n = await conn.fetchval(
                        "SELECT count(*) FROM clock WHERE last_tick = $1", instants[-1]
                    )
                finally:
                    await conn.close()
                return n == s.topic_partitions

            try:
                await eventually(caught_up, within=120)
            finally:
                await worker.broker.stop()
                await worker.stop()
            states.append(await _state(url, p))
    (deals1, snaps1, alerts1), (deals2, snaps2, alerts2) = states
    assert len(deals1) == 30 and deals1 == deals2
    assert snaps1 and snaps1 == snaps2
    assert alerts1 and alerts1 == alerts2
    assert {a["kind"] for a in alerts1} >= {"at_risk"}
