"""Operational metrics of a worker: one set of figures, two views of it.

The worker's counters (``DealWorker.stats``) and the measurements below are the only source;
the metrics message on the metrics topic and the Prometheus ``/metrics`` page are both read
from them when asked, so they never disagree.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.metrics import PartitionLag, WorkerMetrics
from worker.background import BackgroundTask
from worker.kafka_io import send_all
from worker.log import get_logger


class BatchTimings:
    """Latency of recent batches, partition lag and the time of the last batch."""

    def __init__(self, window: int = 1000) -> None:
        self.latencies_ms: deque[float] = deque(maxlen=window)
        self.lag: dict[tuple[str, int], int] = {}
        self.last_batch_at: datetime | None = None
        self.started = time.monotonic()

    def observe(self, seconds: float, lag: dict[tuple[str, int], int]) -> None:
        self.latencies_ms.append(seconds * 1000)
        self.lag.update(lag)
        self.last_batch_at = datetime.now(UTC)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def snapshot(
    stats: dict[str, int],
    timings: BatchTimings,
    alerts_published: int,
    backlog: int | None,
    forecast: Any = None,
) -> WorkerMetrics:
    return WorkerMetrics(
        worker_id=worker_id(),
        at=datetime.now(UTC),
        uptime_seconds=round(time.monotonic() - timings.started, 3),
        batches=stats.get("batches", 0),
        events_consumed=stats.get("consumed", 0),
        events_applied=stats.get("applied", 0),
        events_deduplicated=stats.get("duplicates", 0),
        events_stale=stats.get("stale", 0),
        events_dead_lettered=stats.get("dead_lettered", 0),
        alerts_raised=stats.get("alerts", 0),
        alerts_published=alerts_published,
        outbox_backlog=backlog,
        consumer_lag=[
            PartitionLag(topic=t, partition=p, lag=lag)
            for (t, p), lag in sorted(timings.lag.items())
        ],
        batch_latency_ms_p50=timings.percentile(50),
        batch_latency_ms_p99=timings.percentile(99),
        last_batch_at=timings.last_batch_at,
        last_forecast_at=getattr(forecast, "last_run_at", None),
        last_forecast_duration_ms=getattr(forecast, "last_duration_ms", None),
        forecast_runs=getattr(forecast, "runs", 0),
    )


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


class MetricsPublisher(BackgroundTask):
    """Publishes a snapshot to the metrics topic every ``interval`` seconds."""

    task_name = "metrics-publisher"

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        take: Callable[[], Awaitable[WorkerMetrics]],
        interval: float,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.take = take
        self.interval = interval
        self.published = 0
        self.log = get_logger(component="metrics", topic=topic)

    async def publish_once(self) -> WorkerMetrics:
        metrics: WorkerMetrics = await self.take()
        await send_all(
            self.producer,
            self.topic,
            [(metrics.worker_id.encode(), metrics.model_dump_json().encode(), ())],
        )
        self.published += 1
        return metrics

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.publish_once()
            except Exception as exc:  # metrics must never take the worker down
                self.log.warning("metrics_publish_failed", error=repr(exc))
