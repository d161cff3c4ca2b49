"""The Kafka side of the worker: a FastStream app whose batch handler applies deal events.

Flow per batch: decode and validate -> dead-letter what cannot be applied -> in one database
transaction: lock the deals, drop already-applied event ids, merge, score, upsert, remember
the event ids -> return, and only then FastStream commits the offsets (NACK_ON_ERROR: an
exception rewinds the partitions instead, so the batch is consumed again).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker

from worker import store
from worker.adapters import load_stage_map
from worker.codec import Incoming, Rejected, decode
from worker.engine import Framework, load_framework
from worker.kafka_io import durable_producer, ensure_topics, send_all
from worker.log import get_logger
from worker.outbox import OutboxRelay
from worker.pipeline import BatchOutcome, apply_batch, outbox_json, rows_json, stints_json
from worker.retry import retry_transient
from worker.settings import Settings, dlq_topic


def dead_letter(rejected: Rejected) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The original bytes and headers, plus headers naming the error and where it came from."""
    ref = rejected.ref
    headers = [
        *ref.headers,
        ("dlq.error", rejected.error.encode()),
        ("dlq.reason", rejected.reason.encode()[:4000]),
        ("dlq.source.topic", ref.topic.encode()),
        ("dlq.source.partition", str(ref.partition).encode()),
        ("dlq.source.offset", str(ref.offset).encode()),
    ]
    return ref.key, ref.value or b"", headers


class DealWorker:
    """Resources of one worker process and its batch handler."""

    def __init__(self, settings: Settings, framework: Framework | None = None) -> None:
        self.settings = settings
        self.framework = framework or load_framework(settings.framework_path)
        self.stages = load_stage_map(settings.stage_map_path)
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.log = get_logger(component="deal-worker")
        self.stats: Counter[str] = Counter()  # running totals since start

    async def start(self) -> None:
        s = self.settings
        await ensure_topics(
            s.kafka_bootstrap_servers,
            [*s.input_topics, *map(dlq_topic, s.input_topics), s.alerts_topic],
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
        self.relay = OutboxRelay(
            self.pool, self.producer, s.alerts_topic, poll_seconds=s.outbox_poll_seconds
        )
        self.relay.start()  # first thing: publish what a previous run committed but did not send

    async def stop(self) -> None:
        if self.relay:
            await self.relay.stop()
        if self.producer:
            await self.producer.stop()
        if self.pool:
            await self.pool.close()

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> BatchOutcome:
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
        self.stats.update(
            batches=1,
            consumed=len(records),
            applied=len(outcome.applied),
            duplicates=len(outcome.duplicates),
            stale=len(outcome.stale),
            dead_lettered=len(rejected) + len(outcome.failed),
            alerts=len(outcome.alerts),
        )
        self._log_outcome(outcome, len(records), time.perf_counter() - started)
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
            await store.record_events(
                conn,
                [(i.event.id, i.event.subject, i.event.time, "applied") for i in outcome.applied]
                + [(i.event.id, i.event.subject, i.event.time, "stale") for i in outcome.stale],
            )
            # Deterministic failures are dead-lettered before the commit: if the commit then
            # fails, the batch is redone and they are dead-lettered again (same source offset).
            await self._dead_letter(outcome.failed)
        return outcome

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        assert self.producer is not None
        for r in rejected:
            self.log.warning(
                "event_rejected", error=r.error, reason=r.reason, **r.ref.log_context()
            )
        by_topic: dict[str, list] = {}
        for r in rejected:
            by_topic.setdefault(dlq_topic(r.ref.topic), []).append(dead_letter(r))

        async def send() -> None:
            for topic, messages in by_topic.items():
                await send_all(self.producer, topic, messages)

        await retry_transient(send, "dead_letter")

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
        for kind, items in (("duplicate", outcome.duplicates), ("stale", outcome.stale)):
            for item in items:
                self.log.info(
                    f"event_{kind}",
                    deal_id=item.event.subject,
                    event_id=item.event.id,
                    **item.ref.log_context(),
                )
        self.log.info(
            "batch_applied",
            records=size,
            applied=len(outcome.applied),
            duplicates=len(outcome.duplicates),
            stale=len(outcome.stale),
            failed=len(outcome.failed),
            deals=len(outcome.states),
            alerts=len(outcome.alerts),
            ms=round(seconds * 1000, 1),
        )


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _tolerant_parser(records: tuple[ConsumerRecord, ...], original: Callable) -> Any:
    # FastStream decodes every header as UTF-8; one binary header must not wedge the partition.
    try:
        return await original(records)
    except UnicodeDecodeError:
        clean = tuple(
            dataclasses.replace(r, headers=[(k, v) for k, v in r.headers if _utf8(v)])
            for r in records
        )
        return await original(clean)


async def _raw_records(message: Any) -> Any:
    return message.raw_message  # we validate ourselves, record by record


def create_broker(settings: Settings, worker: DealWorker) -> KafkaBroker:
    # FastStream's per-message access log goes to DEBUG; our batch_applied line says more.
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers, client_id="revintel-worker", log_level=logging.DEBUG
    )

    @broker.subscriber(
        *settings.input_topics,
        group_id=settings.consumer_group,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=_tolerant_parser,
        decoder=_raw_records,
        title="deal-events",
        description="CRM deal change events: our CloudEvents envelope on the deal topic, "
        "vendor webhook bodies on the source topics; key = deal id",
    )
    async def on_deal_events(records: Any) -> None:
        await worker.handle_batch(records)

    return broker


def create_app(settings: Settings) -> FastStream:
    worker = DealWorker(settings)
    broker = create_broker(settings, worker)
    app = FastStream(broker)
    app.on_startup(worker.start)
    app.after_shutdown(worker.stop)
    return app
