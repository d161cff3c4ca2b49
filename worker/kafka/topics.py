"""Topics: their names, their creation, and waiting for a broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from worker.kafka.client import KafkaClient, as_client
from worker.log import get_logger
from worker.settings import dlq_topic

__all__ = ["dlq_topic", "ensure_topics", "kafka_answers", "wait_for_kafka"]


async def ensure_topics(kafka: str | KafkaClient, topics: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(**as_client(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            get_logger().info("topics_created", topics=missing, partitions=partitions)
    finally:
        await admin.close()


async def kafka_answers(kafka: str | KafkaClient, within: float = 5.0) -> None:
    """Raise unless a broker answers (and accepts our credentials) within ``within`` seconds."""
    admin = AIOKafkaAdminClient(**as_client(kafka), request_timeout_ms=int(within * 1000))
    try:
        async with asyncio.timeout(within):
            await admin.start()
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_for_kafka(kafka: str | KafkaClient, within: float = 30.0) -> None:
    """Fail with a clear message when no broker answers (instead of hanging)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await kafka_answers(kafka)
            return
        except (KafkaConnectionError, TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                bootstrap = as_client(kafka)["bootstrap_servers"]
                raise RuntimeError(
                    f"no Kafka broker at {bootstrap}: start one with `scripts/services.sh up`"
                ) from exc
            await asyncio.sleep(1.0)
