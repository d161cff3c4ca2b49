"""The operational metrics message a worker publishes every few seconds to the metrics topic.

Operational figures are about the process, not the data: timestamps here are wall-clock.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

# What became of the events a consumer read: FamilyCounts has a field of each name, WorkerMetrics
# ``events_<name>``, and /metrics an ``outcome`` label of each.
# ``skipped``: items of a vendor batch that are not deals (a contact beside deal changes).
EVENT_OUTCOMES = ("consumed", "applied", "deduplicated", "stale", "dead_lettered", "skipped")


class PartitionLag(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    lag: int = Field(ge=0, description="records behind the partition's high watermark")


class FamilyCounts(BaseModel):
    """The counters of one event family's consumer (deal, account, vendor)."""

    model_config = ConfigDict(frozen=True)

    family: str = Field(description="deal, account or vendor")
    consumed: int = 0
    applied: int = 0
    deduplicated: int = 0
    stale: int = 0
    dead_lettered: int = 0
    skipped: int = Field(0, description="vendor batch items skipped as not deals")
    stages_unmapped: int = Field(0, description="vendor changes whose stage is not mapped")
    alerts_raised: int = Field(0, description="alerts this family wrote to the outbox")


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
    events_skipped: int = Field(
        0, description="vendor batch items skipped as not deals (a contact beside deal changes)"
    )
    stages_unmapped: int = Field(
        0,
        description="vendor changes whose stage the stage map lacks (the stage part "
        "dead-lettered, the other fields applied)",
    )
    alerts_raised: int = Field(description="alerts written to the outbox")
    alerts_published: int = Field(description="alerts the relay published to Kafka")
    outbox_backlog: int | None = Field(description="alerts committed but not yet published")
    consumer_lag: list[PartitionLag]
    batch_latency_ms_p50: float | None
    batch_latency_ms_p99: float | None
    last_batch_at: datetime | None
    last_forecast_at: datetime | None = None
    last_forecast_duration_ms: float | None = None
    forecast_runs: int = Field(0, description="forecast runs this worker completed")
    forecast_skipped: int = Field(0, description="forecast ticks skipped (another runner)")
    forecast_failures: int = Field(0, description="forecast runs that failed")
    forecast_last_as_of: date | None = Field(None, description="as-of of the last run")
    forecast_next_due: datetime | None = Field(None, description="when the next run is due")
    families: list[FamilyCounts] = Field(
        default_factory=list, description="the event counters by family (deal, account...)"
    )
