"""``revintel ingest``: the CRM webhook ingress alone, scaled apart from the workers."""

from __future__ import annotations

import asyncio

import typer

from worker.cli.common import SERVICE_ERRORS, fail, settings
from worker.log import configure_logging


def ingest() -> None:
    """Serve POST /webhooks/hubspot, /pipedrive and /salesforce (and /health, /docs) on
    REVINTEL_HTTP_HOST:REVINTEL_HTTP_PORT: each body is authenticated and published to its
    vendor's topic (acks=all) before the 2xx; `revintel run` maps it. No database needed."""
    from aiokafka.errors import KafkaError

    from worker.http.ingress import serve_ingest
    from worker.kafka.client import kafka_client
    from worker.kafka.topics import wait_for_kafka

    current = settings()
    configure_logging(current.log_level, current.log_json, current.secrets)

    async def main() -> None:
        await wait_for_kafka(kafka_client(current), within=10.0)  # no broker, or it refused us
        await serve_ingest(current)

    try:
        asyncio.run(main())
    except (*SERVICE_ERRORS, KafkaError, RuntimeError) as exc:
        fail(f"cannot start the ingress: {exc}", code=1)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
