"""``revintel ingest``: the webhook ingress alone (no database, no consumer), scaled apart
from the workers. It serves /webhooks/* and /health (200 while the Kafka producer runs) on
REVINTEL_HTTP_HOST:REVINTEL_HTTP_PORT and stops on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from starlette.types import Receive, Scope, Send

from worker.http.server import outer_app
from worker.http.webhooks import WebhookConfig, producer_publish, webhook_router
from worker.kafka.client import kafka_client, running
from worker.kafka.producer import durable_producer
from worker.kafka.topics import dlq_topic, ensure_topics
from worker.log import get_logger
from worker.settings import Settings


class _Health:
    """/health of the ingress: 200 once its producer runs, else 503."""

    def __init__(self) -> None:
        self.producer: AIOKafkaProducer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ok = self.producer is not None and scope.get("path") == "/health"
        status = 200 if ok else (503 if scope.get("path") == "/health" else 404)
        body = json.dumps({"status": "ok" if ok else "unavailable"}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def ingress_app(settings: Settings) -> tuple[Any, _Health]:
    health = _Health()
    router = webhook_router(WebhookConfig.of(settings), producer_publish(lambda: health.producer))
    return outer_app(health, [router], "revenue-intelligence ingress"), health


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield  # serve_ingest owns SIGINT and SIGTERM


async def serve_ingest(settings: Settings) -> None:
    app, health = ingress_app(settings)
    topics = list(settings.source_topics)
    await ensure_topics(
        kafka_client(settings), [*topics, *map(dlq_topic, topics)], settings.topic_partitions
    )
    async with running(durable_producer(kafka_client(settings))) as producer:
        health.producer = producer
        try:
            await _serve(settings, app)
        finally:
            health.producer = None
    get_logger().info("ingress_stopped", detail="shut down gracefully")


async def _serve(settings: Settings, app: Any) -> None:
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level=logging.WARNING,
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    get_logger().info("ingress_started", host=settings.http_host, port=settings.http_port)
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
