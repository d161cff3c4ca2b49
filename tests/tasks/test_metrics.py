from types import SimpleNamespace

from aiokafka import TopicPartition

from worker.http.prometheus import prometheus_text
from worker.kafka.consumer import BatchTimings
from worker.kafka.subscription import partition_lag
from worker.tasks.metrics import snapshot


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
