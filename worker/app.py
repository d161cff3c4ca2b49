"""The composition root: settings in, a running worker out. Nothing imports this module back.

It builds the broker with one batch subscriber per event family (deals, accounts), each a
:class:`~worker.kafka.consumer.BatchConsumer` whose family plug-in joins the family's decoder
(``worker.kafka.codec``), its pure fold (``worker.domain``) and its projection
(``worker.store``); starts and stops the background tasks (outbox relay, retention, forecast
scheduler, metrics publisher); and serves the HTTP routes (``worker.http``) beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.specification import AsyncAPI

from schemas.alerts import Alert
from schemas.forecasts import ForecastPublished
from schemas.metrics import WorkerMetrics
from worker.adapters import load_stage_map
from worker.domain.account_batch import AccountBatchOutcome, apply_account_batch
from worker.domain.deal_batch import DealBatchOutcome, apply_deal_batch
from worker.engine import Framework, load_framework
from worker.forecast.scheduler import ForecastScheduler
from worker.http.api import api_router
from worker.http.asyncapi_doc import asyncapi_routes, complete
from worker.http.routes import routes
from worker.http.server import outer_app
from worker.http.webhooks import WebhookConfig, producer_publish, webhook_router
from worker.kafka import codec
from worker.kafka.client import broker_security, kafka_client
from worker.kafka.consumer import BatchConsumer, BatchTimings, EventFamily
from worker.kafka.normaliser import NormalisedOutcome, publish_canonical
from worker.kafka.producer import durable_producer
from worker.kafka.subscription import batch_subscriber_options
from worker.kafka.topics import KafkaRefused, dlq_topic, ensure_topics, kafka_answers
from worker.log import get_logger, library_logger
from worker.models.churn import TrainParams
from worker.models.deal_scoring import DealModels
from worker.models.deal_training import DealTrainParams
from worker.retry import TRANSIENT
from worker.settings import Settings
from worker.store import accounts, deals
from worker.store.batches import Projection, apply_batch
from worker.store.migrations import migrate
from worker.store.params import sync_framework_params
from worker.store.pool import create_pool, postgres_answers, safe_url
from worker.tasks.base import BackgroundTask
from worker.tasks.champion import churn_champion, deal_champion
from worker.tasks.clock import ClockPublisher
from worker.tasks.metrics import MetricsPublisher, snapshot
from worker.tasks.outbox_relay import OutboxRelay
from worker.tasks.retention import Pruner
from worker.tasks.retrain import DEFAULT_CRON as DEFAULT_RETRAIN_CRON
from worker.tasks.retrain import Retrainer


@dataclass(slots=True)
class Running:
    """What exists only while the worker runs (created by ``Worker.start``)."""

    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay
    forecast: ForecastScheduler | None
    tasks: list[BackgroundTask] = field(default_factory=list)


class Worker:
    """One worker process: its consumers, its resources, its background tasks."""

    def __init__(self, settings: Settings, framework: Framework | None = None) -> None:
        self.settings = settings
        self.framework = framework or load_framework(settings.framework_path)
        self.stages = load_stage_map(settings.stage_map_path)
        self.timings = BatchTimings()
        self.running: Running | None = None
        # the churn champion accounts are scored with (None: the framework's heuristic), and
        # the deal champion and challenger of the close probability
        self.churn = churn_champion(settings.model_refresh_seconds)
        self.deal = deal_champion(settings.model_refresh_seconds)
        self.deals: BatchConsumer[DealBatchOutcome] = BatchConsumer(
            self._deal_family(), self._producer, self.timings
        )
        self.accounts: BatchConsumer[AccountBatchOutcome] = BatchConsumer(
            self._account_family(), self._producer, self.timings
        )
        self.normaliser: BatchConsumer[NormalisedOutcome] = BatchConsumer(
            self._vendor_family(), self._producer, self.timings
        )
        self.consumers: tuple[BatchConsumer[Any], ...] = (
            self.deals,
            self.accounts,
            self.normaliser,
        )
        self.broker = create_broker(settings, self.consumers)

    # -- the event families --------------------------------------------------------------

    def _deal_family(self) -> EventFamily[DealBatchOutcome]:
        s = self.settings
        decode = partial(codec.decode_deal, max_bytes=s.max_message_bytes, stages=self.stages)
        return self._projected(
            "deal",
            "deal_id",
            s.deal_topic,
            decode,
            deals,
            apply_deal_batch,
            models=lambda: {"deal_models": self.deal_models()},
        )

    def deal_models(self) -> DealModels:
        """The deal models in charge now (none: the framework's close probability)."""
        return DealModels(
            self.deal.current, self.deal.challenger, self.settings.deal_challenger_share
        )

    def _account_family(self) -> EventFamily[AccountBatchOutcome]:
        s = self.settings
        decode = partial(codec.decode_account, max_bytes=s.max_message_bytes)
        return self._projected(
            "account",
            "account_id",
            s.account_topic,
            decode,
            accounts,
            apply_account_batch,
            models=lambda: {"churn_model": self.churn.current},
        )

    def _projected(
        self,
        name: str,
        subject: str,
        topic: str,
        decode: Any,
        table: Any,
        fold: Any,
        models: Callable[[], dict[str, Any]] = dict,
    ) -> EventFamily[Any]:
        """A family projected into a table by one of the ``worker.store`` modules (its
        ``lock``, ``write`` and ``age``) with its pure fold; ticks age it; alerts wake the
        relay. ``models`` gives the fold and the ageing the models in charge at call time
        (a champion may change while the worker runs)."""
        fw = self.framework
        projection = Projection.of(table, fold, lambda: {"framework": fw, **models()})
        return EventFamily(
            name=name,
            subject=subject,
            topics=(topic,),
            decode=decode,
            apply=partial(self._apply, projection),
            after_commit=self._alerts_committed,
        )

    def _vendor_family(self) -> EventFamily[NormalisedOutcome]:
        """Vendor webhook bodies, normalised onto the deal topic (no database)."""
        s = self.settings
        return EventFamily(
            name="vendor",
            subject="deal_id",
            topics=tuple(s.source_topics),
            decode=partial(
                codec.decode,
                max_bytes=s.max_message_bytes,
                topic_sources=s.source_topics,
                stages=self.stages,
                currencies=s.source_currencies,
            ),
            apply=partial(publish_canonical, self._producer, s.deal_topic),
        )

    async def _apply(self, projection: Projection[Any, Any], items: list, dead_letter) -> Any:
        await self.churn.ready()  # the champions loaded at start, if there are any
        await self.deal.ready()
        return await apply_batch(self._run().pool, projection, items, dead_letter)

    def _alerts_committed(self, outcome: DealBatchOutcome | AccountBatchOutcome) -> None:
        if not outcome.alerts:
            return
        if self.settings.crash_point == "after_commit":
            # test hook: die between the database commit and the alert publish
            os.kill(os.getpid(), signal.SIGKILL)
        self._run().relay.nudge()

    # -- lifecycle -----------------------------------------------------------------------

    def _run(self) -> Running:
        if self.running is None:
            raise RuntimeError("the worker is not started: call start() first")
        return self.running

    def _producer(self) -> AIOKafkaProducer:
        return self._run().producer

    @property
    def topics(self) -> list[str]:
        """Every topic the worker reads or writes (created at start when missing)."""
        s = self.settings
        inputs = [t for c in self.consumers for t in c.family.topics]
        outputs = [s.alerts_topic, s.metrics_topic, s.forecasts_topic]
        return [*inputs, *map(dlq_topic, inputs), *outputs]

    async def start(self) -> None:
        s = self.settings
        kafka = kafka_client(s)
        await ensure_topics(kafka, self.topics, s.topic_partitions)
        pool = await create_pool(s.database_url)
        try:
            producer = await self._sync_and_connect(pool)
        except BaseException:
            await pool.close()  # a start that failed half-way can be tried again
            raise
        self._start_tasks(pool, producer)

    async def _sync_and_connect(self, pool: asyncpg.Pool) -> AIOKafkaProducer:
        await sync_framework_params(
            pool,
            {
                "alert_value_threshold": self.framework.alerts.value_threshold,
                "alert_probability_drop_points": self.framework.alerts.probability_drop_points,
                "overdue_half_life_days": self.framework.forecast.overdue_half_life_days,
            },
        )
        producer = durable_producer(kafka_client(self.settings))
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    def _start_tasks(self, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        s = self.settings
        relay = OutboxRelay(pool, producer, s.alerts_topic, poll_seconds=s.outbox_poll_seconds)
        forecast = None
        if s.forecast_enabled:
            forecast = ForecastScheduler.from_settings(
                s,
                pool,
                producer,
                framework_version=self.framework.version,
                half_life_days=self.framework.forecast.overdue_half_life_days,
            )
        self.running = Running(pool, producer, relay, forecast)
        # the relay first: publish what a previous run committed but did not send
        pruner = Pruner(pool, s.retention_days, snapshot_days=s.snapshot_retention_days)
        tasks: list[BackgroundTask] = [relay, pruner, self.churn.bind(pool), self.deal.bind(pool)]
        if s.retrain_cron:
            tasks.append(self._retrainer(pool))
        if forecast is not None:
            tasks.append(forecast)
        if s.tick_interval > timedelta(0):
            clock_topics = [s.deal_topic, s.account_topic]
            tasks.append(ClockPublisher(pool, producer, clock_topics, s.tick_interval))
        if s.metrics_interval_seconds > 0:
            tasks.append(
                MetricsPublisher(
                    producer, s.metrics_topic, self.metrics, s.metrics_interval_seconds
                )
            )
        for task in tasks:
            task.start()
        self.running.tasks = tasks

    def _retrainer(self, pool: asyncpg.Pool) -> Retrainer:
        s = self.settings
        return Retrainer(
            pool,
            self.framework,
            cron=s.retrain_cron or DEFAULT_RETRAIN_CRON,
            deal_params=DealTrainParams(min_won=s.deal_min_won, min_lost=s.deal_min_lost),
            churn_params=TrainParams(
                min_churned=s.churn_min_churned, min_renewed=s.churn_min_renewed
            ),
            challenger_share=s.deal_challenger_share,
        )

    async def stop(self) -> None:
        running, self.running = self.running, None
        if running is None:
            return
        for task in reversed(running.tasks):
            await task.stop()
        await running.producer.stop()
        await running.pool.close()

    # -- what the HTTP routes see (``worker.http.routes.WorkerStatus``) -----------------

    async def metrics(self) -> WorkerMetrics:
        backlog, published, forecast = None, 0, None
        if self.running is not None:
            published = self.running.relay.published
            forecast = self.running.forecast
            try:
                async with asyncio.timeout(2):
                    backlog = await self.running.relay.backlog()
            except Exception:
                backlog = None  # the database is down: report what is known
        counts = sum((c.stats for c in self.consumers), start=type(self.deals.stats)())
        families = {c.family.name: c.stats for c in self.consumers}
        return snapshot(counts, self.timings, published, backlog, forecast, families)

    async def reachable(self) -> dict[str, bool]:
        kafka, postgres = await asyncio.gather(self._kafka_ok(), self._postgres_ok())
        return {"kafka": kafka, "postgres": postgres}

    async def _kafka_ok(self) -> bool:
        return await self.broker.ping(timeout=2)

    async def _postgres_ok(self) -> bool:
        if self.running is None:
            return False
        try:
            async with asyncio.timeout(2):
                return await self.running.pool.fetchval("SELECT 1") == 1
        except Exception:
            return False


def _subscribe(
    broker: KafkaBroker, settings: Settings, consumer: BatchConsumer[Any], description: str
) -> None:
    """One batch subscriber for a family's topics, and its dead-letter topics documented."""
    family = consumer.family

    @broker.subscriber(
        *family.topics,
        **batch_subscriber_options(settings),
        title=f"{family.name}-events",
        description=description,
    )
    async def on_batch(records: Sequence[Any], message: KafkaMessage) -> None:
        await consumer.handle_batch(records, getattr(message, "consumer", None))

    for topic in family.topics:
        broker.publisher(
            dlq_topic(topic),
            title=dlq_topic(topic),
            schema=bytes,
            description="Dead letters: the original bytes and headers, plus "
            "dlq.error, dlq.reason, dlq.source.topic/partition/offset",
        )


DESCRIPTIONS = {
    "deal": "CRM deal change events in our CloudEvents envelope, and clock ticks "
    "(every partition); key = deal id",
    "account": "Account events (usage, tickets, payments, NPS, renewals) in our CloudEvents "
    "envelope, and clock ticks (every partition); key = account id",
    "vendor": "Raw vendor webhook bodies (HubSpot, Salesforce CDC, Pipedrive), mapped by the "
    "topic's adapter and published to the deal topic",
}


def create_broker(settings: Settings, consumers: Sequence[BatchConsumer[Any]]) -> KafkaBroker:
    # FastStream's per-message access log goes to DEBUG; our batch_applied line says more.
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="revintel-worker",
        security=broker_security(settings),
        logger=library_logger("faststream.kafka"),
        log_level=logging.DEBUG,
    )
    for consumer in consumers:
        if consumer.family.topics:
            _subscribe(broker, settings, consumer, DESCRIPTIONS[consumer.family.name])
    # Documented for the AsyncAPI document: what the worker writes, and in which shape. The
    # sends go through the worker's durable producer (acks=all, idempotent), not the broker.
    broker.publisher(
        settings.alerts_topic,
        title="alerts",
        schema=Alert,
        description="At-risk alerts of deals and accounts (key = deal or account id, headers "
        "alert_id, kind and entity)",
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
    return broker


def http_app(worker: Worker) -> Any:
    """/webhooks/* (when enabled; published through the worker's durable producer), the API
    (/api/revenue/*, /docs), and /metrics, /health and /asyncapi of a worker (its lifecycle is
    the caller's)."""
    operations = AsgiFastStream(
        worker.broker,
        # /asyncapi: our offline page, with the payload schemas FastStream leaves empty
        asgi_routes=[*routes(worker), *asyncapi_routes(asyncapi_document(worker.broker))],
        specification=asyncapi_spec(worker.broker),
        logger=library_logger("faststream"),
    )
    s = worker.settings
    publish = producer_publish(lambda: worker.running.producer if worker.running else None)
    routers = [webhook_router(WebhookConfig.of(s), publish)] if s.webhooks_enabled else []
    api = api_router(
        keys=s.api_keys,
        framework=worker.framework,
        pool=lambda: worker.running.pool if worker.running else None,
        publish=publish,
        deal_topic=s.deal_topic,
    )
    return outer_app(operations, [*routers, api], "revenue-intelligence worker")


def asyncapi_document(broker: KafkaBroker) -> dict[str, Any]:
    """The AsyncAPI document as JSON, with the payload schemas of the consumed topics."""
    return complete(json.loads(asyncapi_spec(broker).to_specification().to_json()))


def asyncapi_spec(broker: KafkaBroker) -> AsyncAPI:
    return AsyncAPI(
        broker,
        title="revenue-intelligence worker",
        version="0.1.0",
        description="Consumes CRM deal and account events, writes scores to PostgreSQL, "
        "publishes alerts, dead letters, forecasts and metrics.",
    )


# -- running it as a service ---------------------------------------------------------------


class StartupTimeout(Exception):
    """PostgreSQL or Kafka did not answer within ``REVINTEL_STARTUP_DEADLINE``."""


class _HttpServer(uvicorn.Server):
    """uvicorn without signal handling of its own: :func:`serve` owns SIGINT and SIGTERM (uvicorn
    re-raises a caught signal after its shutdown, so a graceful stop would exit -15)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated (modules, framework, clients: ~130,000 objects) out of
    the garbage collector's reach. A full collection walks every tracked object, and the
    records and rows of a steady stream push one every 2 s: each took 50-70 ms of CPU (up to
    290 ms of wall time on a busy machine), a stall of every partition's events; frozen, 1-5
    ms (bench_throughput's latency phase). Frozen objects are still freed by reference
    counting; only cycles among them would stay. The process's own path only (``serve``),
    not a worker started inside another program (tests).

    A young generation of 100,000 objects instead of 700: a batch's records, events and rows
    die young, and the young generation was collected 516 times per 10,000 events (GC time
    halved at 10,000 already: about 4 us of CPU per event). A tick's page keeps thousands of
    scores alive until it is written, traversed again at every young collection: 100,000
    against 10,000 cut a daily tick's Python CPU by 9 % (bench_tick, 100,000 deals: 4.9 ->
    4.45 s; 50,000: 4.75 s; 200,000: 4.4 s); on the event path one pair of bench_throughput
    runs gave 5,590 -> 6,090 events/s (runs of the same code spread by about 5 %)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])


YOUNG_OBJECTS = 100_000


async def serve(
    settings: Settings, migrate_first: bool = True, framework: Framework | None = None
) -> None:
    """Serve /health at once (503 until the worker runs), wait for PostgreSQL and Kafka, start
    consuming; on SIGINT or SIGTERM finish the batch in hand and stop. Raises
    :class:`StartupTimeout` when the services stay away past the deadline."""
    log = get_logger()
    worker = Worker(settings, framework)
    server = _HttpServer(
        uvicorn.Config(
            http_app(worker),
            host=settings.http_host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_config=None,  # uvicorn's lines go through our logging (JSON when asked)
            log_level=logging.WARNING,
        )
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    http = asyncio.create_task(server.serve(), name="http")
    try:
        if await _first_of(start_when_reachable(worker, migrate_first), stopping, http):
            tune_garbage_collector()
            log.info("worker_started", consumer_group=settings.consumer_group)
            await _first_of(stopping.wait(), stopping, http)
    finally:
        log.info("worker_stopping")
        await worker.broker.stop()  # the batch in hand is finished and committed first
        await worker.stop()
        server.should_exit = True
        await http
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("worker_stopped", detail="shut down gracefully")


async def _first_of(work: Awaitable[Any], stopping: asyncio.Event, http: asyncio.Task) -> bool:
    """Run ``work`` until it is done (True), or a stop is asked or the HTTP server ends (False,
    ``work`` cancelled). Its exception, if any, propagates."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop, http}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def start_when_reachable(worker: Worker, migrate_first: bool = True) -> None:
    """Start the worker as soon as PostgreSQL and Kafka answer, waiting with capped backoff
    and one log line per attempt; give up after ``startup_deadline`` seconds (if any)."""
    s = worker.settings
    loop = asyncio.get_running_loop()
    deadline = None if s.startup_deadline is None else loop.time() + s.startup_deadline
    delay = 0.5
    while True:
        down = await unreachable(s, migrate_first)
        if not down:
            try:
                await _start(worker, migrate_first)
                return
            except TRANSIENT as exc:  # went away between the probe and the start
                await worker.broker.stop()
                await worker.stop()
                down = {"startup": exc}
        if deadline is not None and loop.time() >= deadline:
            raise StartupTimeout(_not_reachable(down, s))
        wait = delay if deadline is None else max(0.0, min(delay, deadline - loop.time()))
        get_logger().warning(
            "waiting_for_services",
            unreachable=sorted(down),
            errors={name: _reason(exc) for name, exc in down.items()},
            retry_in=round(wait, 1),
        )
        await asyncio.sleep(wait)
        delay = min(delay * 2, 30.0)


async def unreachable(settings: Settings, migrating: bool = False) -> dict[str, BaseException]:
    """The services that do not answer now, with why (with ``migrating``, also the owner's
    connection the migrations take, when it is another URL)."""
    probes = {
        "postgres": postgres_answers(settings.database_url),
        "kafka": kafka_answers(kafka_client(settings)),
    }
    if migrating and settings.migration_url != settings.database_url:
        probes["migrations"] = postgres_answers(settings.migration_url)
    results = await asyncio.gather(*probes.values(), return_exceptions=True)
    return {
        name: result
        for name, result in zip(probes, results, strict=True)
        if isinstance(result, BaseException)
    }


async def _start(worker: Worker, migrate_first: bool) -> None:
    if migrate_first:
        s = worker.settings
        applied = await migrate(s.migration_url, grant_to=s.worker_role)
        if applied:
            get_logger().info("migrations_applied", migrations=applied)
    await worker.start()
    await worker.broker.start()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _not_reachable(down: dict[str, BaseException], settings: Settings) -> str:
    """One line: each service that refused us says so in its own words (a broker rejecting
    the credentials is there, not unreachable), then those that did not answer."""
    after = f"{settings.startup_deadline:g} s (REVINTEL_STARTUP_DEADLINE)"
    parts = [
        f"{exc}, still after {after}" for exc in down.values() if isinstance(exc, KafkaRefused)
    ]
    silent = {name: exc for name, exc in down.items() if not isinstance(exc, KafkaRefused)}
    if silent:
        parts.append(_silent(silent, after, settings))
    return "; ".join(parts)


def _silent(down: dict[str, BaseException], after: str, settings: Settings) -> str:
    where = {
        "postgres": f"PostgreSQL at {safe_url(settings.database_url)}",
        "kafka": f"Kafka at {settings.kafka_bootstrap_servers}",
        "migrations": "PostgreSQL for the migrations (REVINTEL_MIGRATE_DATABASE_URL) at "
        + safe_url(settings.migration_url),
        "startup": "the services",
    }
    names = " and ".join(where[name] for name in sorted(down))
    return f"{names} not reachable after {after}: {'; '.join(map(_reason, down.values()))}"
