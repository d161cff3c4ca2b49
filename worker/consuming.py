"""Consuming a batch from Kafka: options shared by the subscribers, dead letters, lag."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from structlog.stdlib import BoundLogger

from worker.codec import Rejected
from worker.kafka_io import send_all
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


async def publish_dead_letters(
    producer: AIOKafkaProducer, rejected: Iterable[Rejected], log: BoundLogger
) -> None:
    """Each rejected record to ``<its topic>.dlq``, acknowledged by the broker (acks=all)
    before the batch's offsets can be committed; transient failures are retried."""
    by_topic: dict[str, list] = {}
    for r in rejected:
        log.warning("event_rejected", error=r.error, reason=r.reason, **r.ref.log_context())
        by_topic.setdefault(dlq_topic(r.ref.topic), []).append(dead_letter(r))

    async def send() -> None:
        for topic, messages in by_topic.items():
            await send_all(producer, topic, messages)

    if by_topic:
        await retry_transient(send, "dead_letter")


def batch_subscriber_options(settings: Settings) -> dict[str, Any]:
    """Batches, offsets committed only after the handler returned (an exception rewinds the
    batch's partitions instead), records handed over raw: we validate them one by one."""
    return {
        "group_id": settings.consumer_group,
        "batch": True,
        "max_records": settings.batch_size,
        "batch_timeout_ms": settings.batch_timeout_ms,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "parser": tolerant_parser,
        "decoder": raw_records,
    }


def partition_lag(records: Sequence[ConsumerRecord], consumer: Any) -> dict[tuple[str, int], int]:
    """Records left behind each partition's high watermark after this batch."""
    if consumer is None or not hasattr(consumer, "highwater"):
        return {}
    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[(r.topic, r.partition)] = max(r.offset, last.get((r.topic, r.partition), -1))
    lag = {}
    for (topic, partition), offset in last.items():
        high = consumer.highwater(TopicPartition(topic, partition))
        if high is not None:
            lag[(topic, partition)] = max(0, high - offset - 1)
    return lag


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def tolerant_parser(records: tuple[ConsumerRecord, ...], original: Callable) -> Any:
    # FastStream decodes every header as UTF-8; one binary header must not wedge the partition.
    try:
        return await original(records)
    except UnicodeDecodeError:
        clean = tuple(
            dataclasses.replace(r, headers=[(k, v) for k, v in r.headers if _utf8(v)])
            for r in records
        )
        return await original(clean)


async def raw_records(message: Any) -> Any:
    return message.raw_message  # we validate ourselves, record by record


def tally(stats: Counter[str], records: int, rejected: int, outcome: Any, **extra: int) -> None:
    """Add a batch to a worker's running totals (deal and account outcomes alike)."""
    stats.update(
        batches=1,
        consumed=records,
        applied=len(outcome.applied),
        duplicates=len(outcome.duplicates),
        stale=len(outcome.stale),
        dead_lettered=rejected + len(outcome.failed),
        **extra,
    )


def log_batch(
    log: BoundLogger,
    outcome: Any,
    records: int,
    seconds: float,
    *,
    prefix: str,
    subject: str,
    **extra: int,
) -> None:
    """One line per skipped event (duplicate or stale) and a summary line for the batch;
    ``prefix`` names the event family in the log ("" for deals, "account_" for accounts) and
    ``subject`` the key its id is logged under."""
    for kind, items in (("duplicate", outcome.duplicates), ("stale", outcome.stale)):
        for item in items:
            log.info(
                f"{prefix}event_{kind}",
                **{subject: item.event.subject},
                event_id=item.event.id,
                **item.ref.log_context(),
            )
    log.info(
        f"{prefix}batch_applied",
        records=records,
        applied=len(outcome.applied),
        duplicates=len(outcome.duplicates),
        stale=len(outcome.stale),
        failed=len(outcome.failed),
        **extra,
        ms=round(seconds * 1000, 1),
    )
