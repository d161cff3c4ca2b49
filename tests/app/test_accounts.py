"""Account events against real Kafka and PostgreSQL: merged, scored, idempotent, dead-lettered;
account alerts through the outbox, on events and on clock ticks.

The expected scores are computed here straight from the engine, with inputs written out by hand
from the events (not through ``worker.domain.account``), and compared with the stored rows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.account_events import AccountEvent, AccountEventAdapter
from schemas.alerts import AccountAlert, AlertAdapter
from tests.services import eventually, read_all, read_topic, unique
from worker.engine import (
    ChurnInput,
    ExpansionInput,
    default_framework,
    score_churn,
    score_expansion,
)
from worker.kafka.consumer import BatchConsumer
from worker.kafka.ticks import publish_tick
from worker.settings import Settings, dlq_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FW = default_framework()


class Events:
    """Builds one account's events with ids of their own."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.n = 0

    def __call__(self, kind: str, data: dict[str, Any], day: float) -> AccountEvent:
        self.n += 1
        return AccountEventAdapter.validate_python(
            {
                "id": f"{self.account}-{self.n}",
                "source": "tests/accounts",
                "type": f"account.{kind}",
                "time": T0 + timedelta(days=day),
                "subject": self.account,
                "data": data,
            }
        )


@pytest.fixture
async def accounts(settings, start_worker) -> tuple[Settings, BatchConsumer]:
    """A worker consuming topics of this test's own; its account consumer."""
    worker = await start_worker(settings)
    return settings, worker.accounts


async def publish(producer: AIOKafkaProducer, topic: str, events: list[AccountEvent]) -> None:
    for e in events:
        await producer.send_and_wait(topic, e.model_dump_json().encode(), key=e.subject.encode())


async def row_of(db, account: str):
    return await db.fetchrow("SELECT * FROM accounts WHERE account_id = $1", account)


def at_risk_events(account: str) -> list[AccountEvent]:
    e = Events(account)
    return [
        e(
            "created",
            {
                "name": "Globex",
                "industry": "healthcare",
                "owner": "Ana",
                "plan": "Professional",
                "licensed_seats": 50,
                "features_available": 20,
                "renewal_date": "2026-04-15",
                "arr": "60000",
            },
            0,
        ),
        e(
            "usage_reported",
            {"period_end": "2026-02-01", "active_seats": 45, "logins": 400, "features_used": 12},
            1,
        ),
        e(
            "usage_reported",
            {"period_end": "2026-02-08", "active_seats": 44, "logins": 380, "features_used": 12},
            2,
        ),
        e(
            "usage_reported",
            {"period_end": "2026-02-15", "active_seats": 30, "logins": 210, "features_used": 10},
            3,
        ),
        e(
            "usage_reported",
            {"period_end": "2026-02-22", "active_seats": 22, "logins": 150, "features_used": 9},
            4,
        ),
        e("ticket_opened", {"ticket_id": "T1", "severity": "urgent", "escalated": True}, 5),
        e("ticket_opened", {"ticket_id": "T2", "severity": "low"}, 6),
        e("payment_failed", {"invoice_id": "INV-1", "amount": "5000", "days_overdue": 12}, 7),
        e("nps_submitted", {"score": 4, "csat": 2.5}, 8),
        e("renewal_updated", {"seats": 40, "downgrade_requested": True}, 9),
    ]


def expanding_events(account: str) -> list[AccountEvent]:
    e = Events(account)
    usage = [(15, 100, 6), (17, 130, 7), (19, 170, 8), (20, 210, 9)]
    return [
        e(
            "created",
            {
                "name": "Initech",
                "industry": "technology",
                "plan": "starter",
                "licensed_seats": 20,
                "features_available": 10,
            },
            0,
        ),
        *[
            e(
                "usage_reported",
                {
                    "period_end": (date(2026, 2, 1) + timedelta(weeks=i)).isoformat(),
                    "active_seats": seats,
                    "logins": logins,
                    "features_used": [f"feature-{k}" for k in range(features)],
                },
                1 + i,
            )
            for i, (seats, logins, features) in enumerate(usage)
        ],
        e("ticket_opened", {"ticket_id": "T9", "severity": "medium"}, 5),
        e("payment_failed", {"invoice_id": "INV-9", "amount": "2000", "days_overdue": 3}, 5.5),
        e("ticket_closed", {"ticket_id": "T9"}, 6),
        e("payment_succeeded", {"invoice_id": "INV-9"}, 6.5),
        e("nps_submitted", {"score": 10, "csat": 5}, 7),
        e("renewal_updated", {"renewal_date": "2026-12-01", "arr": "24000"}, 8),
    ]


def assert_scores(row, churn, expansion) -> None:
    assert row["churn_risk"] == churn.score
    assert row["churn_level"] == churn.level
    assert json.loads(row["churn_drivers"]) == list(churn.drivers)
    assert row["expansion_score"] == expansion.score
    assert row["expansion_motion"] == expansion.motion
    assert json.loads(row["expansion_drivers"]) == list(expansion.drivers)
    details = json.loads(row["score_details"])
    assert details["churn"] == churn.to_dict()
    assert details["expansion"] == expansion.to_dict()
    assert row["framework_version"] == FW.version


async def test_account_events_are_merged_and_scored(accounts, producer, db):
    s, handler = accounts
    p = unique("ACC")
    risky, growing = f"{p}-risky", f"{p}-growing"
    a_events, b_events = at_risk_events(risky), expanding_events(growing)
    late = Events(risky)("updated", {"owner": "Late"}, 3)  # older than the last: stale
    late = late.model_copy(update={"id": f"{risky}-late"})
    # interleave the two accounts, then the late event
    mixed = [x for pair in zip(a_events, b_events, strict=False) for x in pair]
    mixed += a_events[len(b_events) :] + b_events[len(a_events) :]
    await publish(producer, s.account_topic, [*mixed, late])

    async def done() -> bool:
        stale = await db.fetchval("SELECT outcome FROM applied_events WHERE event_id = $1", late.id)
        rows = await db.fetch(
            "SELECT last_event_id FROM accounts WHERE account_id = ANY($1::text[])",
            [risky, growing],
        )
        last = {r["last_event_id"] for r in rows}
        return stale == "stale" and last == {a_events[-1].id, b_events[-1].id}

    await eventually(done)

    # -- the at-risk account, as of its last event (2026-03-11) --
    row = await row_of(db, risky)
    as_of = date(2026, 3, 11)
    churn = score_churn(
        ChurnInput(
            industry="healthcare",
            logins=[400, 380, 210, 150],
            active_seats=[45, 44, 30, 22],
            licensed_seats=40,
            open_tickets=2,
            max_ticket_severity="critical",
            escalations=1,
            failed_payments=1,
            days_overdue=12 + 2,  # reported on 03-09, two days on
            downgrade_requests=1,
            nps=4,
            csat=2.5,
            renewal_date=date(2026, 4, 15),
            as_of=as_of,
        ),
        FW,
    )
    expansion = score_expansion(
        ExpansionInput(
            industry="healthcare",
            plan_tier="professional",
            licensed_seats=40,
            active_seats=22,
            features_adopted=9,
            features_available=20,
            churn_risk=churn.score,
            usage=[400, 380, 210, 150],
        ),
        FW,
    )
    assert churn.level in ("high", "critical") and churn.breakdown.days_to_renewal == 35
    assert_scores(row, churn, expansion)
    assert row["owner"] == "Ana"  # the stale update changed nothing
    assert (row["plan"], row["licensed_seats"], row["arr"]) == ("professional", 40, Decimal(60000))
    assert (row["open_ticket_count"], row["escalated_tickets"], row["max_ticket_severity"]) == (
        2,
        1,
        "critical",
    )
    assert (row["failed_payments"], row["failed_payments_total"], row["days_overdue"]) == (1, 1, 14)
    assert (row["nps"], row["csat"], row["downgrade_requested"]) == (4, Decimal("2.50"), True)
    assert (row["active_seats"], row["logins"], row["features_used"]) == (22, 150, 9)
    assert len(json.loads(row["usage_history"])) == 4
    assert row["scored_at"] == row["last_event_time"] == a_events[-1].time
    assert row["created_at"] == T0

    # -- the growing account, as of 2026-03-10 --
    row = await row_of(db, growing)
    churn = score_churn(
        ChurnInput(
            industry="technology",
            logins=[100, 130, 170, 210],
            active_seats=[15, 17, 19, 20],
            licensed_seats=20,
            nps=10,
            csat=5,
            renewal_date=date(2026, 12, 1),
            as_of=date(2026, 3, 10),
        ),
        FW,
    )
    expansion = score_expansion(
        ExpansionInput(
            industry="technology",
            plan_tier="starter",
            licensed_seats=20,
            active_seats=20,
            features_adopted=9,
            features_available=10,
            churn_risk=churn.score,
            usage=[100, 130, 170, 210],
        ),
        FW,
    )
    assert churn.level == "low" and expansion.motion != "none"
    assert_scores(row, churn, expansion)
    assert (row["open_ticket_count"], row["failed_payments"], row["failed_payments_total"]) == (
        0,
        0,
        1,
    )
    assert json.loads(row["open_tickets"]) == {} and json.loads(row["failed_invoices"]) == {}

    outcomes = await db.fetch(
        "SELECT outcome, count(*) AS n FROM applied_events WHERE deal_id = ANY($1::text[]) "
        "GROUP BY outcome",
        [risky, growing],
    )
    assert {r["outcome"]: r["n"] for r in outcomes} == {
        "applied": len(a_events) + len(b_events),
        "stale": 1,
    }
    assert handler.stats["applied"] == len(a_events) + len(b_events)
    assert handler.stats["stale"] == 1


async def test_redelivery_changes_nothing(accounts, producer, db):
    s, handler = accounts
    account = unique("ACC-R")
    events = at_risk_events(account)
    await publish(producer, s.account_topic, events)

    async def applied() -> bool:
        row = await row_of(db, account)
        return row is not None and row["last_event_id"] == events[-1].id

    await eventually(applied)
    before = await row_of(db, account)
    recorded = await db.fetchval("SELECT count(*) FROM applied_events WHERE deal_id = $1", account)

    await publish(producer, s.account_topic, events)  # the same events again (same ids)

    async def all_seen_twice() -> bool:
        return handler.stats["duplicates"] >= len(events)

    await eventually(all_seen_twice)
    after = await row_of(db, account)
    assert dict(after) == dict(before)  # updated_at included: the row was not rewritten
    assert handler.stats["duplicates"] == len(events)
    assert handler.stats["applied"] == len(events)
    assert (
        await db.fetchval("SELECT count(*) FROM applied_events WHERE deal_id = $1", account)
        == recorded
        == len(events)
    )


async def test_invalid_messages_are_dead_lettered_and_valid_ones_apply(
    settings, start_worker, producer, db
):
    s = settings.model_copy(update={"max_message_bytes": 2048})
    handler = (await start_worker(s)).accounts
    p = unique("ACC-D")

    def raw(account: str, **changes: Any) -> bytes:
        body = Events(account)("created", {"name": "X"}, 0).model_dump(mode="json")
        for path, value in changes.items():
            target = body
            *parents, leaf = path.split("__")
            for key in parents:
                target = target[key]
            target[leaf] = value
        return json.dumps(body).encode()

    bad: dict[str, tuple[bytes | None, bytes, str, bytes]] = {
        # name: (key, payload, expected error class, fragment of the reason)
        "malformed": (b"m", b'{"id": "x", "type": ', "malformed_json", b"EOF"),
        "unknown": (
            b"u",
            raw(f"{p}-u", type="account.merged"),
            "unknown_event_type",
            b"account.merged",
        ),
        "schema": (
            f"{p}-s".encode(),
            raw(f"{p}-s", type="account.nps_submitted", data={"score": 11}),
            "schema_violation",
            b"data.score",
        ),
        "severity": (
            f"{p}-v".encode(),
            raw(
                f"{p}-v",
                type="account.ticket_opened",
                data={"ticket_id": "T", "severity": "blocker"},
            ),
            "schema_violation",
            b"severity",
        ),
        "naive_time": (
            f"{p}-t".encode(),
            raw(f"{p}-t", time="2026-03-02T09:00:00"),
            "schema_violation",
            b"UTC offset",
        ),
        "key_mismatch": (b"someone-else", raw(f"{p}-k"), "key_mismatch", b"differs"),
        "oversized": (f"{p}-o".encode(), raw(f"{p}-o") + b" " * 3000, "oversized", b"exceeds 2048"),
        "empty": (b"e", b"", "empty_payload", b"no payload"),
    }
    good = [
        Events(f"{p}-ok{i}")("nps_submitted", {"score": i % 11}, 0) for i in range(len(bad) + 1)
    ]
    for i, (key, payload, _, _) in enumerate(bad.values()):
        await publish(producer, s.account_topic, [good[i]])
        await producer.send_and_wait(s.account_topic, payload, key=key)
    await publish(producer, s.account_topic, [good[-1]])

    async def all_good_applied() -> bool:
        n = await db.fetchval("SELECT count(*) FROM accounts WHERE account_id LIKE $1 || '-ok%'", p)
        return n == len(good)

    await eventually(all_good_applied)
    dead = await read_topic(s.kafka_bootstrap_servers, dlq_topic(s.account_topic), len(bad))
    assert len(dead) == len(bad)
    by_value = {r.value: dict(r.headers) for r in dead}
    for name, (_key, payload, error, fragment) in bad.items():
        headers = by_value[payload]
        assert headers["dlq.error"].decode() == error, name
        assert fragment in headers["dlq.reason"], (name, headers["dlq.reason"])
        assert headers["dlq.source.topic"].decode() == s.account_topic
        assert int(headers["dlq.source.offset"]) >= 0
    assert {r.key for r in dead} == {key for key, *_ in bad.values()}
    assert not await db.fetchval(
        "SELECT count(*) FROM accounts WHERE account_id LIKE $1 || '%' "
        "AND account_id NOT LIKE $1 || '-ok%'",
        p,
    )
    assert handler.stats["dead_lettered"] == len(bad)
    # the valid ones were scored (a detractor or a promoter, no other data)
    row = await row_of(db, f"{p}-ok0")
    assert row["nps"] == 0 and row["churn_risk"] is not None


async def test_runs_beside_the_deal_subscriber_in_one_group(settings, producer, db):
    """The worker's own wiring: the deal and account consumers share one broker (one consumer
    group) and the worker's producer."""
    from tests.factories import created
    from worker.app import Worker

    s = settings
    worker = Worker(s)
    handler = worker.accounts
    await worker.start()
    assert handler.producer() is worker.deals.producer() is worker.running.producer
    broker = worker.broker
    await broker.start()
    try:
        account, deal = unique("ACC-W"), unique("DEAL-W")
        await publish(producer, s.account_topic, at_risk_events(account))
        deal_event = created(deal)
        await producer.send_and_wait(
            s.deal_topic, deal_event.model_dump_json().encode(), key=deal.encode()
        )
        bad = b"not json"
        await producer.send_and_wait(s.account_topic, bad, key=account.encode())

        async def both_applied() -> bool:
            a = await db.fetchval(
                "SELECT last_event_id FROM accounts WHERE account_id = $1", account
            )
            d = await db.fetchval("SELECT deal_id FROM deals WHERE deal_id = $1", deal)
            return a == at_risk_events(account)[-1].id and d == deal

        await eventually(both_applied)
        (dead,) = await read_topic(s.kafka_bootstrap_servers, dlq_topic(s.account_topic), 1)
        assert dead.value == bad and dict(dead.headers)["dlq.error"] == b"malformed_json"

        async def counted() -> bool:
            return worker.deals.stats["applied"] == 1 and handler.stats["dead_lettered"] == 1

        await eventually(counted)
        assert handler.stats["applied"] == len(at_risk_events(account))
    finally:
        await broker.stop()
        await worker.stop()


# -- account alerts ---------------------------------------------------------------------------


def critical_events(account: str, renewal_in_days: int, downgrade: bool) -> list[AccountEvent]:
    """Healthy usage and one invoice 45 days overdue (churn 49, no renewal known), then on day 5
    a renewal ``renewal_in_days`` ahead (with a downgrade request: churn 89, critical)."""
    e = Events(account)
    renewal = (T0 + timedelta(days=5 + renewal_in_days)).date().isoformat()
    return [
        e("created", {"name": "Umbrella", "owner": "Ana", "licensed_seats": 50, "arr": "90000"}, 0),
        e("usage_reported", {"period_end": "2026-02-22", "active_seats": 40, "logins": 300}, 1),
        e("usage_reported", {"period_end": "2026-03-01", "active_seats": 40, "logins": 300}, 2),
        e("nps_submitted", {"score": 7, "csat": 4}, 3),
        e("payment_failed", {"invoice_id": "I1", "amount": "5000", "days_overdue": 45}, 4),
        e("renewal_updated", {"renewal_date": renewal, "downgrade_requested": downgrade}, 5),
    ]


async def account_alerts(s: Settings, count: int) -> dict[tuple[str, str], tuple[Any, Any]]:
    """The alerts topic's records once it holds ``count``, parsed, by (account, kind) (the
    partitions of the topic are read in no particular order)."""
    records = await read_topic(s.kafka_bootstrap_servers, s.alerts_topic, count)
    alerts = [(r, AlertAdapter.validate_json(r.value)) for r in records]
    by = {(a.account_id, a.kind): (r, a) for r, a in alerts}
    assert len(by) == len(alerts) == count, [a for _, a in alerts]
    return by


async def test_account_alerts_on_events_and_ticks_through_the_outbox(
    settings, start_worker, producer, db
):
    s = settings
    await start_worker(s)
    p = unique("ACC-AL")
    risky, nearing = f"{p}-risky", f"{p}-nearing"
    # risky: churn 89 (critical) with the renewal in 40 days; nearing: churn in the 50s (no
    # downgrade request) with the renewal in 75 days, outside the window
    risky_events = critical_events(risky, 40, downgrade=True)
    nearing_events = critical_events(nearing, 75, downgrade=False)
    await publish(producer, s.account_topic, [*risky_events, *nearing_events])

    async def both_applied() -> bool:
        # the two accounts sit on different partitions: the alert may be out before the
        # second account's batch is in
        n = await db.fetchval(
            "SELECT count(*) FROM accounts WHERE last_event_id = ANY($1::text[])",
            [risky_events[-1].id, nearing_events[-1].id],
        )
        return n == 2

    await eventually(both_applied)
    ((record, alert),) = (await account_alerts(s, 1)).values()
    assert isinstance(alert, AccountAlert)
    assert (alert.kind, alert.level, alert.account_id) == ("at_risk", "critical", risky)
    assert (alert.churn_risk, alert.churn_level, alert.days_to_renewal) == (89, "critical", 40)
    assert alert.reasons[:2] == [
        "Churn risk 89/100 (critical)",
        "Renewal in 40 days at churn risk 89/100",
    ]
    assert alert.reasons[2:] == [d for d in alert.drivers if "Renewal" not in d][:3]
    assert "Invoice 46 days overdue" in alert.reasons
    assert alert.caused_by.event_id == risky_events[-1].id
    assert (alert.previous.level, alert.previous.churn_risk) == ("none", 49)
    assert (alert.name, alert.owner, alert.arr) == ("Umbrella", "Ana", Decimal(90000))
    headers = {k: v.decode() for k, v in record.headers}
    assert record.key == risky.encode()
    assert headers == {"alert_id": alert.alert_id, "kind": "at_risk", "entity": "account"}
    outbox = await db.fetch("SELECT * FROM alert_outbox WHERE deal_id LIKE $1 || '%'", p)
    assert [(r["entity"], r["deal_id"], r["kind"]) for r in outbox] == [
        ("account", risky, "at_risk")
    ]
    expected = score_churn(
        ChurnInput(
            logins=[300, 300],
            active_seats=[40, 40],
            licensed_seats=50,
            failed_payments=1,
            days_overdue=45 + 1,
            downgrade_requests=1,
            nps=7,
            csat=4,
            days_to_renewal=40,
        ),
        FW,
    )
    assert expected.score == 89 and list(expected.drivers) == alert.drivers
    rows = {
        r["account_id"]: r
        for r in await db.fetch(
            "SELECT * FROM accounts WHERE account_id = ANY($1::text[])", [risky, nearing]
        )
    }
    assert rows[risky]["alert_level"] == "critical"
    # at or above renewal_churn_min, but the renewal (75 days) is outside the 60-day window
    assert rows[nearing]["alert_level"] == "none" and 50 <= rows[nearing]["churn_risk"] < 70

    # a tick 20 days on: both rescored as of it; the nearing renewal (55 days) raises its alert,
    # the risky account is still critical and raises nothing
    at = T0 + timedelta(days=25)
    await publish_tick(producer, [s.account_topic], at, timedelta(days=1))

    async def ticked() -> bool:
        n = await db.fetchval(
            "SELECT count(*) FROM clock WHERE topic = $1 AND last_tick = $2", s.account_topic, at
        )
        return n == s.topic_partitions

    await eventually(ticked)
    after_tick = await account_alerts(s, 2)
    assert set(after_tick) == {(risky, "at_risk"), (nearing, "at_risk")}
    assert after_tick[risky, "at_risk"][1] == alert
    record, ticked_alert = after_tick[nearing, "at_risk"]
    assert (ticked_alert.kind, ticked_alert.level, ticked_alert.account_id) == (
        "at_risk",
        "at_risk",
        nearing,
    )
    assert ticked_alert.caused_by.event_type == "clock.tick" and ticked_alert.occurred_at == at
    assert ticked_alert.reasons[0] == (
        f"Renewal in 55 days at churn risk {ticked_alert.churn_risk}/100"
    )
    assert record.key == nearing.encode()
    rows = {
        r["account_id"]: r
        for r in await db.fetch(
            "SELECT * FROM accounts WHERE account_id = ANY($1::text[])", [risky, nearing]
        )
    }
    assert rows[risky]["scored_at"] == rows[nearing]["scored_at"] == at
    assert rows[risky]["churn_risk"] > 89 and rows[risky]["alert_level"] == "critical"
    assert rows[nearing]["alert_level"] == "at_risk"

    # recovery: the invoice is paid and the renewal signed for a year, without downgrade
    e = Events(risky)
    e.n = len(risky_events)
    recovery = [
        e("payment_succeeded", {"invoice_id": "I1"}, 26),
        e("renewal_updated", {"renewal_date": "2027-04-01", "downgrade_requested": False}, 27),
    ]
    await publish(producer, s.account_topic, recovery)
    record, resolved = (await account_alerts(s, 3))[risky, "resolved"]
    assert record.key == risky.encode()
    assert (resolved.kind, resolved.level, resolved.account_id) == ("resolved", "none", risky)
    assert resolved.previous.level == "critical"
    assert resolved.churn_risk < 65 and resolved.reasons[0] == (
        f"Recovered: churn risk {resolved.churn_risk}/100 ({resolved.churn_level})"
    )
    assert resolved.caused_by.event_id in {r.id for r in recovery}
    assert (
        await db.fetchval("SELECT alert_level FROM accounts WHERE account_id = $1", risky) == "none"
    )
    # exactly these three alerts, all published
    records = await read_all(s.kafka_bootstrap_servers, s.alerts_topic)
    assert len(records) == 3
    assert not await db.fetchval(
        "SELECT count(*) FROM alert_outbox WHERE deal_id LIKE $1 || '%' AND published_at IS NULL",
        p,
    )
