"""How every batch subscriber is set up: options (no auto-commit, NACK on error, raw records),
a parser tolerant of binary headers, and the consumer lag after a batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy

from worker.settings import Settings


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
