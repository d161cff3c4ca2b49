"""The worker against real Kafka and PostgreSQL: events in, scored rows out.

The expected deal states are written out by hand from the events (not merged with
``worker.domain.deal``), and the expected scores come straight from the engine on those
hand-written facts, so a bug in the merge or in the fact mapping shows.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.deal_events import DealStage
from tests.factories import T0, created, event
from tests.services import (
    eventually,
    group_caught_up,
    publish,
    read_topic,
    unique,
)
from worker.adapters import adapt, load_stage_map
from worker.engine import DealFacts, load_framework, predict_value_for_deal, score_deal

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "adapters" / "fixtures"


def fixture(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def facts(**fields) -> DealFacts:
    """The engine's facts of a deal made by ``tests.factories.created`` at T0 with no other
    field, with ``fields`` changed: every value written by hand."""
    base = {
        "stage": DealStage.prospecting,
        "amount": 10_000.0,
        "industry": "technology",
        "lead_score": None,
        "interactions": 0,
        "objections_handled": 0,
        "has_champion": False,
        "budget_confirmed": False,
        "decision_maker_engaged": False,
        "competitors": 0,
        "last_activity_at": None,
        "stage_entered_at": T0,
        "created_at": T0,
        "expected_close_date": None,
        "close_date_pushes": 0,
    }
    return DealFacts(**{**base, **fields})


async def deal_rows(db, prefix):
    return {
        r["deal_id"]: r
        for r in await db.fetch(
            "SELECT * FROM deals WHERE deal_id LIKE $1 || '%' ORDER BY deal_id", prefix
        )
    }


async def test_events_are_merged_scored_and_written(settings, start_worker, producer, db):
    p = unique("W")
    a, b = f"{p}-A", f"{p}-B"
    events = [
        created(a, amount=40_000, expected_close_date="2026-04-20"),
        created(b, amount=9_000, expected_close_date="2026-04-01"),
        event(a, "stage_changed", {"stage": "qualification", "budget_confirmed": True}, day=4),
        event(a, "activity_logged", {"kind": "call"}, day=6),
        event(b, "activity_logged", {"kind": "email"}, day=1),
        event(a, "updated", {"expected_close_date": "2026-05-10"}, day=8),
        event(b, "closed_won", {"amount": 9_500}, day=10),
    ]
    await start_worker(settings)
    await publish(producer, settings.deal_topic, events)

    async def both_final():
        rows = await deal_rows(db, p)
        return (
            len(rows) == 2
            and rows[a]["last_event_id"] == events[5].id
            and rows[b]["stage"] == "closed_won"
        )

    await eventually(both_final)
    rows = await deal_rows(db, p)
    # the merged states, written out from the events above
    state_columns = {
        a: {
            "name": f"Deal {a}",
            "company": "Acme",
            "owner": "Ana",
            "industry": "technology",
            "amount": Decimal("40000.00"),
            "predicted_amount": None,
            "currency": "USD",
            "stage": "qualification",
            "expected_close_date": date(2026, 5, 10),  # pushed from 2026-04-20
            "lead_score": None,
            "interactions": 1,
            "objections_handled": 0,
            "has_champion": False,
            "budget_confirmed": True,
            "decision_maker_engaged": False,
            "competitors": [],
            "last_activity_at": day(6),
            "close_date_pushes": 1,
            "created_at": T0,
            "stage_entered_at": day(4),
            "closed_at": None,
            "last_event_id": events[5].id,
            "last_event_time": day(8),
        },
        b: {
            "name": f"Deal {b}",
            "company": "Acme",
            "owner": "Ana",
            "industry": "technology",
            "amount": Decimal("9500.00"),  # the won amount replaces 9,000
            "predicted_amount": None,
            "currency": "USD",
            "stage": "closed_won",
            "expected_close_date": date(2026, 4, 1),
            "lead_score": None,
            "interactions": 1,
            "objections_handled": 0,
            "has_champion": False,
            "budget_confirmed": False,
            "decision_maker_engaged": False,
            "competitors": [],
            "last_activity_at": day(1),
            "close_date_pushes": 0,
            "created_at": T0,
            "stage_entered_at": day(10),
            "closed_at": day(10),
            "last_event_id": events[6].id,
            "last_event_time": day(10),
        },
    }
    expected_facts = {
        a: facts(
            stage=DealStage.qualification,
            amount=40_000.0,
            interactions=1,
            budget_confirmed=True,
            last_activity_at=day(6),
            stage_entered_at=day(4),
            expected_close_date=date(2026, 5, 10),
            close_date_pushes=1,
        ),
        b: facts(
            stage=DealStage.closed_won,
            amount=9_500.0,
            interactions=1,
            last_activity_at=day(1),
            stage_entered_at=day(10),
            expected_close_date=date(2026, 4, 1),
        ),
    }
    framework = load_framework()
    for deal in (a, b):
        row = rows[deal]
        assert {k: row[k] for k in state_columns[deal]} == state_columns[deal], deal
        score = score_deal(expected_facts[deal], row["last_event_time"], framework)
        assert row["health_score"] == score.health.score, deal
        assert row["health_category"] == score.health.category, deal
        assert float(row["close_probability"]) == pytest.approx(
            score.probability.probability, abs=0.01
        ), deal
        assert json.loads(row["risk_factors"]) == list(score.health.risk_factors), deal
        assert row["framework_version"] == framework.version
        assert row["scored_at"] == row["last_event_time"]
    assert float(rows[b]["close_probability"]) == 100.0
    applied = await db.fetchval(
        "SELECT count(*) FROM applied_events WHERE deal_id LIKE $1 || '%'", p
    )
    assert applied == len(events)
    history = [
        (r["deal_id"], r["stage"], r["entered_at"], r["left_at"])
        for r in await db.fetch(
            "SELECT * FROM deal_stage_history WHERE deal_id LIKE $1 || '%' "
            "ORDER BY deal_id, entered_at",
            p,
        )
    ]
    t0, t4, t10 = events[0].time, events[2].time, events[6].time
    assert history == [
        (a, "prospecting", t0, t4),
        (a, "qualification", t4, None),
        (b, "prospecting", t0, t10),
        (b, "closed_won", t10, None),
    ]


async def test_invalid_messages_are_dead_lettered_and_valid_ones_still_land(
    settings, start_worker, producer, db
):
    p = unique("X")
    good = [created(f"{p}-{i}", amount=1000 * (i + 1)) for i in range(3)]
    await start_worker(settings)
    topic = settings.deal_topic
    await producer.send_and_wait(topic, b"{definitely not json", key=b"junk")
    await publish(producer, topic, good[:1])
    bad_amount = created(f"{p}-neg").model_dump(mode="json")
    bad_amount["data"]["amount"] = -5
    await producer.send_and_wait(topic, json.dumps(bad_amount).encode(), key=f"{p}-neg".encode())
    await producer.send_and_wait(
        topic, b'{"type": "deal.teleported", "id": "z"}', key=b"z", headers=[("trace", b"t-1")]
    )
    await publish(producer, topic, good[1:])

    async def good_ones_landed():
        return len(await deal_rows(db, p)) == 3

    await eventually(good_ones_landed)
    assert set(await deal_rows(db, p)) == {e.subject for e in good}
    dead = await read_topic(settings.kafka_bootstrap_servers, settings.deal_dlq_topic, 3)
    by_error = {dict(r.headers)["dlq.error"].decode(): r for r in dead}
    assert set(by_error) == {"malformed_json", "schema_violation", "unknown_event_type"}
    assert by_error["malformed_json"].value == b"{definitely not json"
    violation = dict(by_error["schema_violation"].headers)
    assert b"amount" in violation["dlq.reason"]
    assert violation["dlq.source.topic"].decode() == topic
    unknown = dict(by_error["unknown_event_type"].headers)
    assert unknown["trace"] == b"t-1"  # original headers travel along
    assert b"deal.teleported" in unknown["dlq.reason"]


async def test_redelivery_and_full_replay_give_the_same_state(settings, start_worker, producer, db):
    p = unique("R")
    events = [
        created(f"{p}-1", amount=25_000),
        event(f"{p}-1", "stage_changed", {"stage": "proposal"}, day=3),
        event(f"{p}-1", "activity_logged", {"kind": "meeting"}, day=5),
        created(f"{p}-2", amount=7_000),
        event(f"{p}-2", "closed_lost", {"reason": "budget"}, day=2),
        # per-field merge: an amount of day 1 delivered after the day-3 stage change, a clearing
        created(f"{p}-4", amount=None),
        event(f"{p}-4", "stage_changed", {"stage": "proposal"}, day=3),
        event(f"{p}-4", "updated", {"amount": 4200}, day=1),
        event(f"{p}-4", "updated", {"cleared": ["company"]}, day=4),
    ]
    first = await start_worker(settings)
    await publish(producer, settings.deal_topic, events)

    async def applied(n):
        async def check():
            return (
                await db.fetchval(
                    "SELECT count(*) FROM applied_events WHERE deal_id LIKE $1 || '%'", p
                )
                == n
            )

        return check

    await eventually(await applied(len(events)))
    snapshot = await deal_rows(db, p)

    # The same events delivered again (a producer retry, a CRM resending its webhooks).
    await publish(producer, settings.deal_topic, events)
    marker = created(f"{p}-3")
    await publish(producer, settings.deal_topic, [marker])

    async def first_caught_up():
        return await group_caught_up(
            settings.kafka_bootstrap_servers, settings.consumer_group, settings.deal_topic
        )

    await eventually(first_caught_up)
    assert first.deals.stats["duplicates"] == len(events)
    assert first.deals.stats["applied"] == len(events) + 1

    after_redelivery = await deal_rows(db, p)
    for deal_id, row in snapshot.items():
        assert dict(after_redelivery[deal_id]) == dict(row), f"{deal_id} changed on redelivery"

    # Wipe these deals and replay the whole topic from the beginning with a new group.
    await db.execute("DELETE FROM deals WHERE deal_id LIKE $1 || '%'", p)
    await db.execute("DELETE FROM applied_events WHERE deal_id LIKE $1 || '%'", p)
    replay = settings.model_copy(update={"consumer_group": unique("replay")})
    replayer = await start_worker(replay)

    async def replay_caught_up():
        return await group_caught_up(
            replay.kafka_bootstrap_servers, replay.consumer_group, replay.deal_topic
        )

    await eventually(replay_caught_up)
    assert replayer.deals.stats["consumed"] == 2 * len(events) + 1
    assert replayer.deals.stats["applied"] == len(events) + 1
    assert replayer.deals.stats["duplicates"] == len(events)
    replayed = await deal_rows(db, p)
    assert set(replayed) == set(after_redelivery)
    for deal_id, row in after_redelivery.items():
        # updated_at is the database's bookkeeping clock; everything else must match
        want = {k: v for k, v in dict(row).items() if k != "updated_at"}
        got = {k: v for k, v in dict(replayed[deal_id]).items() if k != "updated_at"}
        assert got == want, f"{deal_id} differs after replay"
    assert replayed[f"{p}-1"]["interactions"] == 1
    late = replayed[f"{p}-4"]
    assert (late["amount"], late["stage"], late["company"]) == (Decimal(4200), "proposal", None)
    assert json.loads(late["field_times"]) == {
        "name": "2026-03-02T09:00:00Z",
        "owner": "2026-03-02T09:00:00Z",
        "industry": "2026-03-02T09:00:00Z",
        "stage": "2026-03-05T09:00:00Z",
        "amount": "2026-03-03T09:00:00Z",
        "company": "2026-03-06T09:00:00Z",
    }


async def test_stale_event_does_not_overwrite_newer_state(settings, start_worker, producer, db):
    d = unique("S")
    newer = event(d, "updated", {"amount": 30_000}, day=5)
    older = event(d, "updated", {"amount": 1}, day=2)
    await start_worker(settings)
    await publish(producer, settings.deal_topic, [created(d, amount=100), newer, older])

    async def seen_all():
        return await db.fetchval("SELECT count(*) FROM applied_events WHERE deal_id = $1", d) == 3

    await eventually(seen_all)
    row = (await deal_rows(db, d))[d]
    assert row["amount"] == Decimal("30000.00") and row["last_event_id"] == newer.id
    assert (
        await db.fetchval("SELECT outcome FROM applied_events WHERE event_id = $1", older.id)
        == "stale"
    )


async def test_vendor_webhooks_on_raw_topics_are_normalised_and_applied(
    settings, start_worker, producer, db
):
    hubspot_topic, salesforce_topic = list(settings.source_topics)
    creation = fixture("hubspot", "creation.json")
    sf_create = fixture("salesforce", "create.json")
    await start_worker(settings)
    await producer.send_and_wait(hubspot_topic, creation)
    await producer.send_and_wait(salesforce_topic, sf_create)
    await producer.send_and_wait(hubspot_topic, b'[{"subscriptionType": "deal.creation"}]')
    stages = load_stage_map()
    expected = {e.subject for e in adapt("hubspot", creation, stages)} | {
        e.subject for e in adapt("salesforce", sf_create, stages)
    }

    async def landed():
        return await db.fetchval(
            "SELECT count(*) FROM deals WHERE deal_id = ANY($1::text[])", list(expected)
        ) == len(expected)

    await eventually(landed)
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{hubspot_topic}.dlq", 1)
    headers = dict(dead[0].headers)
    assert headers["dlq.error"] == b"unmappable" and headers["dlq.reason"].startswith(b"hubspot")


async def test_a_deal_without_amount_gets_a_predicted_value_until_it_has_one(
    settings, start_worker, producer, db
):
    d = unique("PV")
    first = event(
        d, "created", {"name": "New logo", "industry": "healthcare", "stage": "qualification"}
    )
    priced = event(d, "updated", {"amount": 12_345}, day=3)
    await start_worker(settings)
    await publish(producer, settings.deal_topic, [first])

    async def scored():
        return await db.fetchval("SELECT predicted_amount FROM deals WHERE deal_id = $1", d)

    await eventually(scored)
    expected = predict_value_for_deal("healthcare", DealStage.qualification, None, load_framework())
    row = await db.fetchrow(
        "SELECT amount, predicted_amount, score_details FROM deals WHERE deal_id = $1", d
    )
    assert row["amount"] is None
    assert float(row["predicted_amount"]) == pytest.approx(expected.predicted_value, abs=0.01)
    assert json.loads(row["score_details"])["value"]["method"] == "framework_default"

    await publish(producer, settings.deal_topic, [priced])

    async def priced_now():
        return await db.fetchval("SELECT amount FROM deals WHERE deal_id = $1", d) is not None

    await eventually(priced_now)
    assert await db.fetchval("SELECT predicted_amount FROM deals WHERE deal_id = $1", d) is None


async def test_retention_prunes_only_old_bookkeeping_rows(db):
    from worker.tasks.retention import prune

    p = unique("RET")
    await db.execute(
        "INSERT INTO applied_events (event_id, deal_id, event_time, outcome, applied_at) VALUES "
        "($1 || '-old', $1, now(), 'applied', now() - interval '40 days'), "
        "($1 || '-new', $1, now(), 'applied', now() - interval '5 days')",
        p,
    )
    deleted = await prune(db, retention_days=30)
    assert deleted["applied_events"] >= 1
    left = await db.fetch("SELECT event_id FROM applied_events WHERE deal_id = $1", p)
    assert [r["event_id"] for r in left] == [f"{p}-new"]


def changed_framework(directory: Path) -> Path:
    """The default framework with another version and a lower proposal base rate."""
    default = (Path(__file__).resolve().parents[2] / "worker/engine/framework.toml").read_text()
    changed = default.replace('version = "', 'version = "test-', 1).replace(
        "[defaults.stages.proposal]\nnorm_days = 21\nbase_rate = 40",
        "[defaults.stages.proposal]\nnorm_days = 21\nbase_rate = 25",
    )
    assert changed.count("base_rate = 25") == 1, "framework.toml layout changed"
    path = directory / "framework.toml"
    path.write_text(changed)
    return path


async def test_rescore_applies_a_changed_framework_to_stored_deals(
    settings, start_worker, producer, db, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from worker.cli import app
    from worker.settings import get_settings

    d = unique("RS")
    events = [created(d, amount=20_000, stage="proposal"), event(d, "activity_logged", {}, day=2)]
    await start_worker(settings)
    await publish(producer, settings.deal_topic, events)

    async def landed():
        return await db.fetchval("SELECT interactions FROM deals WHERE deal_id = $1", d) == 1

    await eventually(landed)
    path = changed_framework(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REVINTEL_FRAMEWORK_PATH", str(path))
    get_settings.cache_clear()
    try:
        first = await asyncio.to_thread(CliRunner().invoke, app, ["rescore"])
        again = await asyncio.to_thread(CliRunner().invoke, app, ["rescore"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "rescored 0 deals" in again.output
    framework = load_framework(path)
    # the stored deal, written out from its two events
    stored = facts(
        stage=DealStage.proposal, amount=20_000.0, interactions=1, last_activity_at=day(2)
    )
    score = score_deal(stored, day(2), framework)
    row = await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", d)
    assert row["framework_version"] == framework.version
    assert row["scored_at"] == day(2)
    assert row["health_score"] == score.health.score
    assert float(row["close_probability"]) == pytest.approx(score.probability.probability, abs=0.01)
    before = score_deal(stored, day(2), load_framework())
    assert score.probability.probability < before.probability.probability  # it did change


async def test_a_merged_deal_leaves_the_pipeline_without_counting_as_lost(
    settings, start_worker, producer, db
):
    """Issue 10: a merge (deal.merged) is not a loss: the merged deal leaves ``deals`` and its
    stage history for a tombstone, so it counts neither in the pipeline nor in win rates, and
    its later events are stale."""
    d, survivor = unique("MG"), unique("MS")
    later = event(d, "closed_lost", {"reason": "late retry"}, day=6)
    events = [
        created(d, amount=5_000),
        event(d, "stage_changed", {"stage": "proposal"}, day=2),
        created(survivor, amount=9_000),
        event(d, "merged", {"into": survivor}, day=4),
        later,
    ]
    await start_worker(settings)
    await publish(producer, settings.deal_topic, events)

    async def seen_all():
        return await db.fetchval(
            "SELECT count(*) FROM applied_events WHERE deal_id = ANY($1::text[])", [d, survivor]
        ) == len(events)

    await eventually(seen_all)
    assert await db.fetchval("SELECT count(*) FROM deals WHERE deal_id = $1", d) == 0
    assert await db.fetchval("SELECT count(*) FROM deal_stage_history WHERE deal_id = $1", d) == 0
    tomb = await db.fetchrow("SELECT * FROM merged_deals WHERE deal_id = $1", d)
    assert (tomb["merged_into"], tomb["last_event_time"]) == (survivor, day(4))
    assert await db.fetchval("SELECT count(*) FROM deals WHERE deal_id = $1", survivor) == 1
    assert (
        await db.fetchval("SELECT outcome FROM applied_events WHERE event_id = $1", later.id)
        == "stale"
    )


async def test_an_update_for_an_unseen_deal_is_incomplete_until_its_creation(
    settings, start_worker, producer, db
):
    """Issue 10: an update for a deal never seen used to become an empty deal at 66 %; it is
    stored incomplete, without scores, until its creation arrives (here late, older)."""
    d = unique("IC")
    await start_worker(settings)
    await publish(producer, settings.deal_topic, [event(d, "updated", {"amount": 700}, day=2)])

    async def stored():
        return await db.fetchrow("SELECT * FROM deals WHERE deal_id = $1", d)

    await eventually(stored)
    row = await stored()
    assert row["incomplete"] and row["amount"] == Decimal(700)
    assert (row["health_score"], row["close_probability"], row["alert_level"]) == (
        None,
        None,
        "none",
    )
    await publish(producer, settings.deal_topic, [created(d, amount=500, day=0)])

    async def completed():
        row = await stored()
        return not row["incomplete"] and row["health_score"] is not None

    await eventually(completed)
    row = await stored()
    assert row["amount"] == Decimal(700) and row["created_at"] == day(0)  # the newer amount
    assert row["close_probability"] is not None
