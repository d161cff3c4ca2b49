from datetime import UTC, date, datetime
from types import SimpleNamespace

from aiokafka import TopicPartition

from schemas.metrics import EVENT_OUTCOMES, FamilyCounts, WorkerMetrics
from worker.http.prometheus import prometheus_text
from worker.kafka.consumer import BatchTimings
from worker.kafka.subscription import partition_lag
from worker.tasks.metrics import family_counts, snapshot


def test_percentiles_over_recent_batches():
    t = BatchTimings(window=100)
    assert t.percentile(50) is None
    for ms in range(1, 101):
        t.observe(ms / 1000, {})
    assert t.percentile(50) == 50.5
    assert 99 <= t.percentile(99) <= 100


def test_snapshot_and_prometheus_text_agree():
    t = BatchTimings()
    t.observe(0.02, {("deals", 0): 5, ("deals", 1): 0})
    stats = {
        "batches": 3,
        "consumed": 10,
        "applied": 7,
        "duplicates": 2,
        "stale": 1,
        "dead_lettered": 0,
        "alerts": 4,
    }
    m = snapshot(stats, t, alerts_published=3, backlog=1)
    assert (m.events_applied, m.events_deduplicated, m.alerts_raised) == (7, 2, 4)
    assert [(p.partition, p.lag) for p in m.consumer_lag] == [(0, 5), (1, 0)]
    text = prometheus_text(m).decode()
    assert 'revintel_events_total{outcome="applied"} 7.0' in text
    assert 'revintel_alerts_total{step="published"} 3.0' in text
    assert "revintel_outbox_backlog 1.0" in text
    assert 'revintel_consumer_lag{partition="0",topic="deals"} 5.0' in text


def test_partition_lag_from_the_batch_and_high_watermarks():
    records = [
        SimpleNamespace(topic="t", partition=p, offset=o) for p, o in ((0, 4), (0, 9), (1, 2))
    ]
    highs = {TopicPartition("t", 0): 10, TopicPartition("t", 1): 8}
    consumer = SimpleNamespace(highwater=highs.get)
    assert partition_lag(records, consumer) == {("t", 0): 0, ("t", 1): 5}
    assert partition_lag(records, None) == {}


def test_account_and_forecast_job_series():
    """Each consumer's counters by family (the account series) and the forecast job's runs
    by result, last as-of and next due, in the snapshot and on /metrics."""
    deal = {"consumed": 9, "applied": 7, "duplicates": 1, "dead_lettered": 1, "alerts": 2}
    account = {"consumed": 5, "applied": 4, "stale": 1, "alerts": 3}
    scheduler = SimpleNamespace(
        runs=4,
        skipped=2,
        failures=1,
        last_run_at=datetime(2026, 3, 14, 2, 0, tzinfo=UTC),
        last_duration_ms=120,
        last_as_of=date(2026, 3, 13),
        next_due=datetime(2026, 3, 14, 2, 15, tzinfo=UTC),
    )
    stats = {k: deal.get(k, 0) + account.get(k, 0) for k in {*deal, *account}}
    m = snapshot(
        stats, BatchTimings(), 0, 0, scheduler, families={"deal": deal, "account": account}
    )
    assert [(f.family, f.applied, f.stale, f.alerts_raised) for f in m.families] == [
        ("account", 4, 1, 3),
        ("deal", 7, 0, 2),
    ]
    assert (m.forecast_runs, m.forecast_skipped, m.forecast_failures) == (4, 2, 1)
    text = prometheus_text(m).decode()
    for line in (
        'revintel_family_events_total{family="account",outcome="applied"} 4.0',
        'revintel_family_events_total{family="account",outcome="stale"} 1.0',
        'revintel_family_events_total{family="deal",outcome="deduplicated"} 1.0',
        'revintel_family_alerts_raised_total{family="account"} 3.0',
        'revintel_forecast_runs_total{result="completed"} 4.0',
        'revintel_forecast_runs_total{result="skipped"} 2.0',
        'revintel_forecast_runs_total{result="failed"} 1.0',
        "revintel_forecast_last_as_of_timestamp_seconds 1.77336e+09",
        "revintel_forecast_next_run_timestamp_seconds 1.7734545e+09",
    ):
        assert line in text, line
    # the metrics message carries them too (and a consumer of an older one still parses it)
    again = WorkerMetrics.model_validate_json(m.model_dump_json())
    assert again.families == m.families and again.forecast_next_due == scheduler.next_due


def test_every_event_outcome_is_a_field_of_the_contract():
    # snapshot, family_counts and /metrics are driven by EVENT_OUTCOMES: each must be a field
    assert set(FamilyCounts.model_fields) == {
        "family",
        *EVENT_OUTCOMES,
        "alerts_raised",
        "stages_unmapped",
    }
    events = {f for f in WorkerMetrics.model_fields if f.startswith("events_")}
    assert events == {f"events_{name}" for name in EVENT_OUTCOMES}
    counts = family_counts("deal", {"consumed": 5, "duplicates": 2, "alerts": 1})
    got = (counts.consumed, counts.deduplicated, counts.applied, counts.alerts_raised)
    assert got == (5, 2, 0, 1)


async def test_skipped_items_and_unmapped_stages_are_counted_by_the_consumer():
    """Issue 10: a contact beside deal changes in a HubSpot batch is skipped and counted (not
    dead-lettered), an unmapped stage is dead-lettered alone and counted; both reach the
    metrics message and /metrics."""
    import json

    from worker.kafka.codec import decode
    from worker.kafka.consumer import BatchConsumer, EventFamily
    from worker.kafka.normaliser import NormalisedOutcome

    note = {"eventId": 1, "portalId": 7, "occurredAt": 1767225600000, "objectId": 5}
    body = [
        {**note, "subscriptionType": "deal.propertyChange", "propertyName": "amount"}
        | {"propertyValue": "900"},
        {**note, "eventId": 2, "subscriptionType": "contact.creation"},
        {**note, "eventId": 3, "subscriptionType": "company.propertyChange"},
        {**note, "eventId": 4, "subscriptionType": "deal.propertyChange"}
        | {"propertyName": "dealstage", "propertyValue": "custom-stage-7"},
    ]
    raw = SimpleNamespace(
        topic="hs", partition=0, offset=1, key=None, value=json.dumps(body).encode(), headers=[]
    )
    dead: list = []

    async def apply(items, dead_letter):
        out = NormalisedOutcome()
        out.applied.extend(items)
        return out

    family = EventFamily(
        name="vendor",
        subject="deal_id",
        topics=("hs",),
        decode=lambda r: decode(r, 100_000, {"hs": "hubspot"}),
        apply=apply,
    )
    consumer = BatchConsumer(family, producer=lambda: None)

    async def keep(rejected):
        dead.extend(rejected)

    consumer.dead_letter = keep  # type: ignore[method-assign]
    outcome = await consumer.handle_batch([raw])
    assert [i.event.type for i in outcome.applied] == ["deal.updated"]
    assert [r.error for r in dead] == ["unmapped_stage"]
    stats = consumer.stats
    assert (stats["skipped"], stats["stages_unmapped"], stats["dead_lettered"]) == (2, 1, 1)
    m = snapshot(dict(stats), consumer.timings, 0, 0, families={"vendor": stats})
    assert (m.events_skipped, m.stages_unmapped) == (2, 1)
    assert (m.families[0].skipped, m.families[0].stages_unmapped) == (2, 1)
    text = prometheus_text(m).decode()
    assert 'revintel_events_total{outcome="skipped"} 2.0' in text
    assert "revintel_stages_unmapped_total 1.0" in text
    assert 'revintel_family_events_total{family="vendor",outcome="skipped"} 2.0' in text
