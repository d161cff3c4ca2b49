"""Operational metrics of a worker: one set of figures, two views of it.

The consumers' counters (``BatchConsumer.stats``) and their timings are the only source;
the metrics message on the metrics topic and the Prometheus ``/metrics`` page are both read
from them when asked, so they never disagree.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.metrics import EVENT_OUTCOMES, FamilyCounts, PartitionLag, WorkerMetrics
from worker.kafka.consumer import BatchTimings
from worker.kafka.producer import send_all
from worker.log import get_logger
from worker.tasks.base import BackgroundTask


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# The consumers' counters (``BatchConsumer.stats``) carry their outcome's name, except these.
_COUNTER_OF = {"deduplicated": "duplicates"}


def _outcomes(stats: Mapping[str, int]) -> dict[str, int]:
    """A consumer's running totals by event outcome (``EVENT_OUTCOMES``)."""
    return {name: stats.get(_COUNTER_OF.get(name, name), 0) for name in EVENT_OUTCOMES}


def family_counts(family: str, stats: Mapping[str, int]) -> FamilyCounts:
    """A consumer's running totals (``BatchConsumer.stats``) as the metrics contract names them."""
    return FamilyCounts(
        family=family,
        alerts_raised=stats.get("alerts", 0),
        stages_unmapped=stats.get("stages_unmapped", 0),
        **_outcomes(stats),
    )


def snapshot(
    stats: dict[str, int],
    timings: BatchTimings,
    alerts_published: int,
    backlog: int | None,
    forecast: Any = None,
    families: Mapping[str, Mapping[str, int]] | None = None,
) -> WorkerMetrics:
    """The figures of a worker now: ``stats`` summed over its consumers, ``families`` each
    consumer's own (by family name), ``forecast`` its scheduler (None: not running here)."""
    return WorkerMetrics(
        worker_id=worker_id(),
        at=datetime.now(UTC),
        uptime_seconds=round(time.monotonic() - timings.started, 3),
        batches=stats.get("batches", 0),
        **{f"events_{name}": n for name, n in _outcomes(stats).items()},
        stages_unmapped=stats.get("stages_unmapped", 0),
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
        forecast_skipped=getattr(forecast, "skipped", 0),
        forecast_failures=getattr(forecast, "failures", 0),
        forecast_last_as_of=getattr(forecast, "last_as_of", None),
        forecast_next_due=getattr(forecast, "next_due", None),
        families=[family_counts(name, s) for name, s in sorted((families or {}).items())],
    )


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
