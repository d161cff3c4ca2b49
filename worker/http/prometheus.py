"""The Prometheus view of a worker's metrics snapshot (``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.metrics import EVENT_OUTCOMES, WorkerMetrics


class SnapshotCollector(Collector):
    """Prometheus view of a snapshot (the ``/metrics`` handler takes one per scrape)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        events = CounterMetricFamily(
            "revintel_events", "Deal events by outcome", labels=["outcome"]
        )
        for outcome in EVENT_OUTCOMES:
            events.add_metric([outcome], getattr(m, f"events_{outcome}"))
        yield events
        yield CounterMetricFamily(
            "revintel_stages_unmapped",
            "Vendor changes whose stage the stage map lacks (the stage part dead-lettered)",
            value=m.stages_unmapped,
        )
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
        yield from _forecast_job(m)
        yield from _families(m)


def _forecast_job(m: WorkerMetrics) -> Iterator[Any]:
    """The forecast job of this worker: runs by result, the last run's as-of, the next due."""
    runs = CounterMetricFamily(
        "revintel_forecast_runs", "Forecast job ticks by result", labels=["result"]
    )
    for result, value in (
        ("completed", m.forecast_runs),
        ("skipped", m.forecast_skipped),
        ("failed", m.forecast_failures),
    ):
        runs.add_metric([result], value)
    yield runs
    if m.forecast_last_as_of is not None:
        yield GaugeMetricFamily(
            "revintel_forecast_last_as_of_timestamp_seconds",
            "As-of date (midnight UTC) of the last forecast run",
            value=datetime.combine(m.forecast_last_as_of, time(), UTC).timestamp(),
        )
    if m.forecast_next_due is not None:
        yield GaugeMetricFamily(
            "revintel_forecast_next_run_timestamp_seconds",
            "When the next forecast run is due",
            value=m.forecast_next_due.timestamp(),
        )


def _families(m: WorkerMetrics) -> Iterator[Any]:
    """Events and alerts by event family (deal, account, vendor): the account series."""
    events = CounterMetricFamily(
        "revintel_family_events",
        "Events by family and outcome",
        labels=["family", "outcome"],
    )
    alerts = CounterMetricFamily(
        "revintel_family_alerts_raised", "Alerts written to the outbox by family", labels=["family"]
    )
    for f in m.families:
        for outcome in EVENT_OUTCOMES:
            events.add_metric([f.family, outcome], getattr(f, outcome))
        alerts.add_metric([f.family], f.alerts_raised)
    yield events
    yield alerts


def prometheus_text(metrics: WorkerMetrics) -> bytes:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(metrics))
    return generate_latest(registry)
