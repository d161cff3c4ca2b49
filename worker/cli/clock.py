"""``revintel tick``: publish one clock tick by hand (the worker publishes them on schedule)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.errors import KafkaError

from worker.cli.common import console, fail, now, parse_instant, settings


def tick(
    at: Annotated[
        str | None,
        typer.Option("--at", help="the tick's instant (ISO date or date-time; default now)"),
    ] = None,
) -> None:
    """Publish a clock tick into every partition of the deal and account topics: every open
    deal and every account is rescored as of its instant."""
    from worker.kafka.client import kafka_client, running
    from worker.kafka.producer import durable_producer
    from worker.kafka.ticks import publish_tick
    from worker.kafka.topics import ensure_topics, wait_for_kafka

    current = settings()
    instant = parse_instant(at, default=now)
    topics = [current.deal_topic, current.account_topic]

    async def main() -> int:
        kafka = kafka_client(current)
        await wait_for_kafka(kafka, within=10.0)
        await ensure_topics(kafka, topics, current.topic_partitions)
        async with running(durable_producer(kafka)) as producer:
            return await publish_tick(producer, topics, instant, current.tick_interval)

    try:
        sent = asyncio.run(main())
    except (KafkaError, RuntimeError, OSError) as exc:
        fail(f"cannot publish the tick: {exc}")
    console.print(
        f"tick {instant:%Y-%m-%dT%H:%M:%SZ} published to {sent} partitions", highlight=False
    )


def register(app: typer.Typer) -> None:
    app.command()(tick)
