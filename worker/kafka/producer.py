"""The durable producer every sender uses (alerts, dead letters, forecasts, metrics, the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from worker.kafka.client import KafkaClient, as_client

Header = tuple[str, bytes]


def durable_producer(kafka: str | KafkaClient) -> AIOKafkaProducer:
    """acks=all and idempotence: an awaited send is on the broker's log, and retries inside
    the client do not duplicate it."""
    return AIOKafkaProducer(
        **as_client(kafka),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
    )


async def send_all(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes, Sequence[Header]]],
) -> None:
    """Send (key, value, headers) messages and wait until the broker has acknowledged all."""
    futures = [
        await producer.send(topic, value=value, key=key, headers=list(headers))
        for key, value, headers in messages
    ]
    await asyncio.gather(*futures)
