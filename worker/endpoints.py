"""HTTP endpoints of a running worker: Prometheus ``/metrics`` and ``/health``.

``/health`` answers 200 when both Kafka and PostgreSQL are reachable, else 503, with when the
last batch was applied (a worker can be reachable yet stuck: alert on that age).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faststream.asgi import AsgiResponse, get

from worker.metrics import prometheus_text

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

    from worker.handlers import DealWorker

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def _postgres_ok(worker: DealWorker) -> bool:
    if worker.pool is None:
        return False
    try:
        async with asyncio.timeout(2):
            return await worker.pool.fetchval("SELECT 1") == 1
    except Exception:
        return False


async def health_report(worker: DealWorker, broker: KafkaBroker) -> dict[str, Any]:
    kafka_ok, pg_ok = await asyncio.gather(broker.ping(timeout=2), _postgres_ok(worker))
    last = worker.timings.last_batch_at
    return {
        "status": "ok" if kafka_ok and pg_ok else "unavailable",
        "kafka": "reachable" if kafka_ok else "unreachable",
        "postgres": "reachable" if pg_ok else "unreachable",
        "last_batch_at": last.isoformat() if last else None,
        "seconds_since_last_batch": (
            round((datetime.now(UTC) - last).total_seconds(), 1) if last else None
        ),
        "batches": worker.stats["batches"],
    }


def routes(worker: DealWorker, broker: KafkaBroker) -> list[tuple[str, Any]]:
    @get(description="Prometheus metrics of this worker")
    async def metrics(scope: Any) -> AsgiResponse:
        body = prometheus_text(await worker.metrics())
        return AsgiResponse(body, 200, {"content-type": PROMETHEUS_CONTENT_TYPE})

    @get(description="Whether Kafka and PostgreSQL are reachable; when the last batch applied")
    async def health(scope: Any) -> AsgiResponse:
        report = await health_report(worker, broker)
        status = 200 if report["status"] == "ok" else 503
        return AsgiResponse(
            json.dumps(report).encode(), status, {"content-type": "application/json"}
        )

    return [("/metrics", metrics), ("/health", health)]
