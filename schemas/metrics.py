"""The operational metrics message a worker publishes every few seconds to the metrics topic.

Operational figures are about the process, not the data: timestamps here are wall-clock.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PartitionLag(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    lag: int = Field(ge=0, description="records behind the partition's high watermark")


class WorkerMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker_id: str = Field(description="host:pid of the worker process")
    at: datetime = Field(description="when the snapshot was taken (wall clock)")
    uptime_seconds: float
    batches: int
    events_consumed: int
    events_applied: int
    events_deduplicated: int = Field(description="redelivered event ids, ignored")
    events_stale: int = Field(description="older than the deal's last applied event, ignored")
    events_dead_lettered: int
    alerts_raised: int = Field(description="alerts written to the outbox")
    alerts_published: int = Field(description="alerts the relay published to Kafka")
    outbox_backlog: int | None = Field(description="alerts committed but not yet published")
    consumer_lag: list[PartitionLag]
    batch_latency_ms_p50: float | None
    batch_latency_ms_p99: float | None
    last_batch_at: datetime | None
    last_forecast_at: datetime | None = None
    last_forecast_duration_ms: float | None = None
    forecast_runs: int = 0
