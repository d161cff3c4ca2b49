"""Publishing clock ticks: one record per partition of each topic, the partition set
explicitly, so each partition's order of events and ticks is fixed (``schemas.clock``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from schemas.clock import CLOCK_SUBJECT, make_tick


async def publish_tick(
    producer: AIOKafkaProducer, topics: Iterable[str], at: datetime, interval: timedelta
) -> int:
    """Publish the tick at ``at`` into every partition of ``topics`` and wait for the acks
    (acks=all with the durable producer); returns how many records were sent."""
    futures = []
    for topic in topics:
        for partition in sorted(await producer.partitions_for(topic)):
            tick = make_tick(at, topic, partition, int(interval.total_seconds()))
            futures.append(
                await producer.send(
                    topic,
                    value=tick.model_dump_json().encode(),
                    key=CLOCK_SUBJECT.encode(),
                    partition=partition,
                )
            )
    await asyncio.gather(*futures)
    return len(futures)


def floor_instant(at: datetime, interval: timedelta) -> datetime:
    """The latest multiple of ``interval`` since the epoch (UTC) at or before ``at``: ticks of
    a daily clock fall on midnight UTC, whoever publishes them."""
    step = interval.total_seconds()
    seconds = at.astimezone(UTC).timestamp()
    return datetime.fromtimestamp(seconds - seconds % step, UTC)


def tick_instants(start: datetime, end: datetime, interval: timedelta) -> list[datetime]:
    """The tick instants after ``start`` up to and including ``end`` (for replays)."""
    at = floor_instant(start, interval) + interval
    instants = []
    while at <= end:
        instants.append(at)
        at += interval
    return instants
