"""The Prometheus view of a worker's metrics snapshot (``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.metrics import WorkerMetrics


class SnapshotCollector(Collector):
    """Prometheus view of a snapshot (the ``/metrics`` handler takes one per scrape)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        events = CounterMetricFamily(
            "revintel_events", "Deal events by outcome", labels=["outcome"]
        )
        for outcome, value in (
            ("consumed", m.events_consumed),
            ("applied", m.events_applied),
            ("deduplicated", m.events_deduplicated),
            ("stale", m.events_stale),
            ("dead_lettered", m.events_dead_lettered),
        ):
            events.add_metric([outcome], value)
        yield events
        yield CounterMetricFamily("revintel_batches", "Batches processed", value=m.batches)
        alerts = CounterMetricFamily("revintel_alerts", "Alerts by step", labels=["step"])
        alerts.add_metric(["raised"], m.alerts_raised)
        alerts.add_metric(["published"], m.alerts_published)
        yield alerts
        if m.outbox_backlog is not None:
            yield GaugeMetricFamily(
                "revintel_outbox_backlog", "Alerts not yet published", value=m.outbox_backlog
            )
        lag = GaugeMetricFamily(
            "revintel_consumer_lag",
            "Records behind the high watermark",
            labels=["topic", "partition"],
        )
        for p in m.consumer_lag:
            lag.add_metric([p.topic, str(p.partition)], p.lag)
        yield lag
        latency = GaugeMetricFamily(
            "revintel_batch_latency_ms", "Batch latency over recent batches", labels=["quantile"]
        )
        for q, v in (("0.5", m.batch_latency_ms_p50), ("0.99", m.batch_latency_ms_p99)):
            if v is not None:
                latency.add_metric([q], v)
        yield latency
        if m.last_batch_at:
            yield GaugeMetricFamily(
                "revintel_last_batch_timestamp_seconds",
                "When the last batch was applied",
                value=m.last_batch_at.timestamp(),
            )
        if m.last_forecast_at:
            yield GaugeMetricFamily(
                "revintel_last_forecast_timestamp_seconds",
                "When the last forecast run finished",
                value=m.last_forecast_at.timestamp(),
            )
        if m.last_forecast_duration_ms is not None:
            yield GaugeMetricFamily(
                "revintel_last_forecast_duration_ms",
                "Duration of the last forecast run",
                value=m.last_forecast_duration_ms,
            )


def prometheus_text(metrics: WorkerMetrics) -> bytes:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(metrics))
    return generate_latest(registry)
