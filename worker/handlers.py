"""The Kafka side of the worker: a FastStream app whose batch handler applies deal events.

Flow per batch: decode and validate -> dead-letter what cannot be applied -> in one database
transaction: lock the deals, drop already-applied event ids, merge, score, upsert, remember
the event ids -> return, and only then FastStream commits the offsets (NACK_ON_ERROR: an
exception rewinds the partitions instead, so the batch is consumed again).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.specification import AsyncAPI

from schemas.alerts import DealAlert
from schemas.forecasts import ForecastPublished
from schemas.metrics import WorkerMetrics
from worker import store
from worker.account_handler import AccountHandler, register_account_subscriber
from worker.adapters import load_stage_map
from worker.codec import Incoming, Rejected, decode
from worker.consuming import (
    batch_subscriber_options,
    log_batch,
    partition_lag,
    publish_dead_letters,
    tally,
)
from worker.engine import Framework, load_framework
from worker.forecast_job import ForecastScheduler
from worker.kafka_io import durable_producer, ensure_topics
from worker.log import get_logger
from worker.metrics import BatchTimings, MetricsPublisher, snapshot
from worker.outbox import OutboxRelay
from worker.pipeline import BatchOutcome, apply_batch, outbox_json, rows_json, stints_json
from worker.retention import Pruner
from worker.retry import retry_transient
from worker.settings import Settings, dlq_topic


class DealWorker:
    """Resources of one worker process and its batch handler."""

    def __init__(self, settings: Settings, framework: Framework | None = None) -> None:
        self.settings = settings
        self.framework = framework or load_framework(settings.framework_path)
        self.stages = load_stage_map(settings.stage_map_path)
        self.accounts = AccountHandler(settings, None, None, self.framework)
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.metrics_publisher: MetricsPublisher | None = None
        self.pruner: Pruner | None = None
        self.forecast: ForecastScheduler | None = None
        self.timings = BatchTimings()
        self.log = get_logger(component="deal-worker")
        self.stats: Counter[str] = Counter()  # running totals since start

    async def start(self) -> None:
        s = self.settings
        await ensure_topics(
            s.kafka_bootstrap_servers,
            [
                *s.input_topics,
                *map(dlq_topic, s.input_topics),
                *self.accounts.topics,
                s.alerts_topic,
                s.metrics_topic,
                s.forecasts_topic,
            ],
            s.topic_partitions,
        )
        self.pool = await store.create_pool(s.database_url)
        await store.sync_framework_params(
            self.pool,
            {
                "alert_value_threshold": self.framework.alerts.value_threshold,
                "alert_probability_drop_points": self.framework.alerts.probability_drop_points,
            },
        )
        self.producer = durable_producer(s.kafka_bootstrap_servers)
        await self.producer.start()
        self.accounts.bind(self.pool, self.producer)
        self.relay = OutboxRelay(
            self.pool, self.producer, s.alerts_topic, poll_seconds=s.outbox_poll_seconds
        )
        self.relay.start()  # first thing: publish what a previous run committed but did not send
        self.pruner = Pruner(self.pool, s.retention_days)
        self.pruner.start()
        if s.forecast_enabled:
            self.forecast = ForecastScheduler.from_settings(
                s, self.pool, self.producer, framework_version=self.framework.version
            )
            self.forecast.start()
        if s.metrics_interval_seconds > 0:
            self.metrics_publisher = MetricsPublisher(
                self.producer, s.metrics_topic, self.metrics, s.metrics_interval_seconds
            )
            self.metrics_publisher.start()

    async def stop(self) -> None:
        if self.metrics_publisher:
            await self.metrics_publisher.stop()
        if self.forecast:
            await self.forecast.stop()
        if self.pruner:
            await self.pruner.stop()
        if self.relay:
            await self.relay.stop()
        if self.producer:
            await self.producer.stop()
        if self.pool:
            await self.pool.close()

    async def metrics(self) -> WorkerMetrics:
        backlog = None
        if self.relay is not None:
            try:
                async with asyncio.timeout(2):
                    backlog = await self.relay.backlog()
            except Exception:
                backlog = None  # the database is down: report what is known
        published = self.relay.published if self.relay else 0
        counts = self.stats + self.accounts.stats  # deal and account events alike
        return snapshot(counts, self.timings, published, backlog, self.forecast)

    async def handle_batch(
        self, records: Sequence[ConsumerRecord], consumer: Any = None
    ) -> BatchOutcome:
        started = time.perf_counter()
        s = self.settings
        valid: list[Incoming] = []
        rejected: list[Rejected] = []
        for record in records:
            out = decode(record, s.max_message_bytes, s.source_topics, self.stages)
            if isinstance(out, Rejected):
                rejected.append(out)
            else:
                valid.extend(out)
        await self._dead_letter(rejected)
        outcome = await retry_transient(lambda: self._apply(valid), "apply_batch")
        if outcome.alerts:
            if self.settings.crash_point == "after_commit":
                # test hook: die between the database commit and the alert publish
                os.kill(os.getpid(), signal.SIGKILL)
            assert self.relay is not None
            self.relay.nudge()
        tally(self.stats, len(records), len(rejected), outcome, alerts=len(outcome.alerts))
        seconds = time.perf_counter() - started
        self.timings.observe(seconds, partition_lag(records, consumer))
        self._log_outcome(outcome, len(records), seconds)
        return outcome

    async def _apply(self, valid: list[Incoming]) -> BatchOutcome:
        assert self.pool is not None, "start() the worker first"
        if not valid:
            return BatchOutcome()
        deal_ids = sorted({i.event.subject for i in valid})
        async with self.pool.acquire() as conn, conn.transaction():
            current = await store.lock_deals(conn, deal_ids)
            seen = await store.seen_events(conn, [i.event.id for i in valid])
            outcome = apply_batch(current, seen, valid, self.framework)
            if outcome.states:
                await store.upsert_deals(conn, rows_json(outcome))
            if outcome.stints:
                await store.record_stints(conn, stints_json(outcome))
            if outcome.alerts:
                await store.insert_alerts(conn, outbox_json(outcome))
            await store.record_outcomes(conn, outcome.applied, outcome.stale)
            # Deterministic failures are dead-lettered before the commit: if the commit then
            # fails, the batch is redone and they are dead-lettered again (same source offset).
            await self._dead_letter(outcome.failed)
        return outcome

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        assert self.producer is not None
        await publish_dead_letters(self.producer, rejected, self.log)

    def _log_outcome(self, outcome: BatchOutcome, size: int, seconds: float) -> None:
        for item in outcome.applied:
            score = outcome.scores[item.event.subject]
            self.log.debug(
                "event_applied",
                deal_id=item.event.subject,
                event_id=item.event.id,
                event_type=item.event.type,
                health=score.health.score,
                probability=score.probability.probability,
                **item.ref.log_context(),
            )
        log_batch(
            self.log,
            outcome,
            size,
            seconds,
            prefix="",
            subject="deal_id",
            deals=len(outcome.states),
            alerts=len(outcome.alerts),
        )


def create_broker(settings: Settings, worker: DealWorker) -> KafkaBroker:
    # FastStream's per-message access log goes to DEBUG; our batch_applied line says more.
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers, client_id="revintel-worker", log_level=logging.DEBUG
    )

    @broker.subscriber(
        *settings.input_topics,
        **batch_subscriber_options(settings),
        title="deal-events",
        description="CRM deal change events: our CloudEvents envelope on the deal topic, "
        "vendor webhook bodies on the source topics; key = deal id",
    )
    async def on_deal_events(records: Any, message: KafkaMessage) -> None:
        await worker.handle_batch(records, getattr(message, "consumer", None))

    register_account_subscriber(broker, settings, worker.accounts)
    # Declared for the AsyncAPI document: what the worker writes, and in which shape.
    broker.publisher(
        settings.alerts_topic,
        title="alerts",
        schema=DealAlert,
        description="At-risk alerts (key = deal id, header alert_id)",
    )
    broker.publisher(
        settings.forecasts_topic,
        title="forecasts",
        schema=ForecastPublished,
        description="Forecast runs (key = as-of date, headers run_id and kind)",
    )
    broker.publisher(
        settings.metrics_topic,
        title="metrics",
        schema=WorkerMetrics,
        description="Operational metrics of each worker, every few seconds",
    )
    for topic in settings.input_topics:
        broker.publisher(
            f"{topic}.dlq",
            title=f"{topic}.dlq",
            schema=bytes,
            description="Dead letters: the original bytes and headers, plus "
            "dlq.error, dlq.reason, dlq.source.topic/partition/offset",
        )
    return broker


def create_app(settings: Settings) -> AsgiFastStream:
    """The worker as an ASGI app: the Kafka consumer plus /metrics, /health and /asyncapi."""
    from worker.endpoints import routes

    worker = DealWorker(settings)
    broker = create_broker(settings, worker)
    app = AsgiFastStream(
        broker,
        asgi_routes=routes(worker, broker),
        asyncapi_path="/asyncapi",
        specification=asyncapi_spec(broker),
    )
    app.on_startup(worker.start)
    app.after_shutdown(worker.stop)
    return app


def asyncapi_spec(broker: KafkaBroker) -> AsyncAPI:
    return AsyncAPI(
        broker,
        title="revenue-intelligence worker",
        version="0.1.0",
        description="Consumes CRM deal events, writes scores to PostgreSQL, publishes alerts, "
        "dead letters and metrics.",
    )
