"""HTTP endpoints of a running worker: Prometheus ``/metrics`` and ``/health``.

``/health`` answers 200 when both Kafka and PostgreSQL are reachable, else 503, with when the
last batch was applied (a worker can be reachable yet stuck: alert on that age). The routes see
the worker only through :class:`WorkerStatus`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, Protocol

from faststream.asgi import AsgiResponse, get

from schemas.metrics import WorkerMetrics
from worker.http.prometheus import prometheus_text

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerStatus(Protocol):
    """What the endpoints need of a worker."""

    async def metrics(self) -> WorkerMetrics:
        """The current metrics snapshot."""
        ...

    async def reachable(self) -> dict[str, bool]:
        """Whether each service answers now: ``{"kafka": ..., "postgres": ...}``."""
        ...


async def health_report(worker: WorkerStatus) -> dict[str, Any]:
    up, m = await asyncio.gather(worker.reachable(), worker.metrics())
    last = m.last_batch_at
    return {
        "status": "ok" if all(up.values()) else "unavailable",
        **{name: "reachable" if ok else "unreachable" for name, ok in up.items()},
        "last_batch_at": last.isoformat() if last else None,
        "seconds_since_last_batch": (
            round((datetime.now(UTC) - last).total_seconds(), 1) if last else None
        ),
        "batches": m.batches,
    }


def routes(worker: WorkerStatus) -> list[tuple[str, Any]]:
    @get(description="Prometheus metrics of this worker")
    async def metrics(scope: Any) -> AsgiResponse:
        body = prometheus_text(await worker.metrics())
        return AsgiResponse(body, 200, {"content-type": PROMETHEUS_CONTENT_TYPE})

    @get(description="Whether Kafka and PostgreSQL are reachable; when the last batch applied")
    async def health(scope: Any) -> AsgiResponse:
        report = await health_report(worker)
        status = 200 if report["status"] == "ok" else 503
        return AsgiResponse(
            json.dumps(report).encode(), status, {"content-type": "application/json"}
        )

    return [("/metrics", metrics), ("/health", health)]
