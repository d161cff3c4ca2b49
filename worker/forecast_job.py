"""Forecast runs: read the open deals, forecast them (worker/forecast.py), store the run and
its monthly snapshots, publish it; on demand or on a cron schedule.

As-of
    A run forecasts "as of" a date: month 0 is its calendar month, overdue-ness is measured
    against it. Given explicitly, or else the data's as-of date (``data_as_of_date()``: the UTC
    date of the newest event applied to any deal), never the wall clock, so a replayed or
    backfilled database forecasts the same way. The clock only dates bookkeeping
    (``started_at``, ``finished_at``, ``duration_ms``) and, in the scheduler, *when* to run.

Storage (``forecast_runs`` / ``forecast_snapshots`` of sql/004)
    1. One REPEATABLE READ transaction reads the data's as-of and the open deals (one query,
       one consistent snapshot), and inserts the run as ``running`` (committed: a run in
       progress is visible).
    2. The forecast is computed outside any transaction (in a thread: it is CPU work).
    3. One transaction inserts all snapshot rows and sets the run ``completed``: a crash or an
       error before its commit leaves no snapshot row at all.
    On an error (or cancellation) the run is set ``failed`` with the error text, best effort.
    A process killed outright leaves its run ``running``; the next run (which holds the lock,
    so no other run can be in progress) marks such rows ``failed`` ("abandoned").

One runner at a time
    Every run takes the session advisory lock :data:`FORECAST_LOCK` with
    ``pg_try_advisory_lock`` (not waiting); when another connection (another replica, or a
    manual run) holds it, :func:`run_forecast` returns ``None`` at once: that run is skipped,
    not queued. The lock is released when the run ends (or with its connection).
    With several replicas whose schedules fire at the same tick, the one that gets the lock
    runs; a replica that gets it just after the first finished would run the tick twice, so
    the scheduler passes ``not_before`` (the tick time, less a clock-skew margin) and a run
    finding a run of the same kind already started since then is skipped too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from croniter import croniter

from schemas.forecasts import (
    ForecastCoverageCounts,
    ForecastKind,
    ForecastPublished,
    ForecastTotals,
)
from worker.background import BackgroundTask
from worker.forecast import (
    ForecastCoverage,
    MonthForecast,
    compute_forecast,
    forecast_coverage,
    from_rows,
)
from worker.kafka_io import send_all
from worker.log import get_logger
from worker.retry import retry_transient

__all__ = [
    "DEFAULT_CRON",
    "DEFAULT_DAILY_CRON",
    "FORECAST_LOCK",
    "MAX_MONTHS",
    "OPEN_DEALS",
    "ForecastScheduler",
    "ForecastUnavailable",
    "compute_months",
    "fetch_open_deals",
    "next_run",
    "publish_forecast",
    "run_forecast",
    "to_published",
]

FORECAST_LOCK = 0x7265_7666_6F72  # "revfor": advisory lock key, one forecast run at a time
DEFAULT_CRON = "*/15 * * * *"
DEFAULT_DAILY_CRON = "0 2 * * *"
MAX_MONTHS = 60
MAX_CLOCK_SKEW = timedelta(seconds=60)  # between replicas and the database, for not_before

OPEN_DEALS = """
SELECT amount, close_probability, expected_close_date
FROM deals
WHERE stage NOT IN ('closed_won', 'closed_lost')
"""

_ALREADY_RAN = """
SELECT EXISTS (SELECT 1 FROM forecast_runs
               WHERE kind = $1 AND status <> 'failed' AND started_at >= $2)
"""
_SWEEP_ABANDONED = """
UPDATE forecast_runs
SET status = 'failed', finished_at = greatest(clock_timestamp(), started_at),
    error = 'abandoned: the runner stopped before finishing'
WHERE status = 'running'
RETURNING run_id
"""
_INSERT_RUN = """
INSERT INTO forecast_runs (run_id, as_of, kind, status, horizon_months, deal_count,
                           framework_version)
VALUES ($1, $2, $3, 'running', $4, $5, $6)
"""
_INSERT_SNAPSHOT = """
INSERT INTO forecast_snapshots (run_id, as_of, month, deal_count, pipeline, weighted, p10, p50,
                                p90, expected_wins, framework_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_COMPLETE_RUN = """
UPDATE forecast_runs
SET status = 'completed', finished_at = greatest(clock_timestamp(), started_at), duration_ms = $2
WHERE run_id = $1
"""
_FAIL_RUN = """
UPDATE forecast_runs
SET status = 'failed', finished_at = greatest(clock_timestamp(), started_at), duration_ms = $2,
    error = $3
WHERE run_id = $1 AND status = 'running'
"""


class ForecastUnavailable(RuntimeError):
    """No as-of date: none was given and there are no deals to take the data's as-of from."""


# --------------------------------------------------------------------------- pure parts


def compute_months(
    rows: Sequence[Mapping[str, Any]], as_of: date, months: int, seed: int = 0
) -> tuple[list[MonthForecast], ForecastCoverage]:
    """The forecast and its coverage for open-deal rows (amount, close_probability,
    expected_close_date)."""
    deals = from_rows(rows)
    return (
        compute_forecast(deals, as_of, months, seed=seed),
        forecast_coverage(deals, as_of, months),
    )


def to_published(
    months: Sequence[MonthForecast],
    coverage: ForecastCoverage,
    *,
    run_id: UUID,
    as_of: date,
    as_of_source: str,
    generated_from: datetime | None,
    kind: str,
    framework_version: str | None,
    seed: int,
) -> ForecastPublished:
    """The published contract of a computed forecast (validated)."""
    contract_months = list(months)
    return ForecastPublished.model_validate(
        {
            "run_id": run_id,
            "as_of": as_of,
            "as_of_source": as_of_source,
            "generated_from": generated_from,
            "kind": kind,
            "horizon_months": len(contract_months),
            "framework_version": framework_version,
            "seed": seed,
            "months": contract_months,
            "totals": ForecastTotals(
                deal_count=sum(m.deal_count for m in months),
                pipeline=sum(m.pipeline for m in months),
                weighted=sum(m.weighted for m in months),
                expected_wins=sum(m.expected_wins for m in months),
            ),
            "coverage": ForecastCoverageCounts(
                open_deals=coverage.total,
                included=coverage.included,
                no_close_date=coverage.no_close_date,
                overdue_folded=coverage.overdue,
                beyond_horizon=coverage.beyond_horizon,
                no_amount=coverage.no_amount,
                no_probability=coverage.no_probability,
            ),
        }
    )


def next_run(cron: str, daily_cron: str, after: datetime) -> tuple[datetime, ForecastKind]:
    """The next tick strictly after ``after`` (aware; cron fields are read in its time zone,
    UTC for the scheduler) and its kind. When both schedules fall on the same instant, one
    ``daily`` run serves both."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    regular = croniter(cron, after).get_next(datetime)
    daily = croniter(daily_cron, after).get_next(datetime)
    return (daily, "daily") if daily <= regular else (regular, "scheduled")


def _previous_tick(cron: str, due: datetime) -> datetime:
    return croniter(cron, due).get_prev(datetime)


def _numeric(x: float) -> Decimal:
    """Shortest round-tripping decimal of a float (not its full binary expansion)."""
    return Decimal(repr(float(x)))


# --------------------------------------------------------------------------- database


async def fetch_open_deals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The open deals' forecast inputs, in one set query."""
    return await conn.fetch(OPEN_DEALS)


async def run_forecast(
    pool: asyncpg.Pool,
    *,
    as_of: date | None,
    kind: ForecastKind,
    months: int = 6,
    seed: int = 0,
    framework_version: str | None,
    not_before: datetime | None = None,
) -> ForecastPublished | None:
    """Forecast the open deals as of ``as_of`` (None: the data's as-of date), store the run and
    its snapshots, and return the contract to publish.

    Returns ``None`` when the run is skipped: another runner holds :data:`FORECAST_LOCK`, or
    ``not_before`` is given and a run of the same kind (not failed) started at or after it.
    Raises :class:`ForecastUnavailable` when ``as_of`` is None and there are no deals; any
    other error is raised after the run is marked failed.
    """
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be in 1..{MAX_MONTHS}, not {months}")
    log = get_logger(forecast_kind=kind)
    started = time.perf_counter()
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", FORECAST_LOCK):
            log.info("forecast_skipped", reason="another forecast run holds the lock")
            return None
        try:
            return await _run_locked(
                conn, as_of, kind, months, seed, framework_version, not_before, started, log
            )
        finally:
            # released with the connection anyway (the pool's reset unlocks all)
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock($1)", FORECAST_LOCK)


async def _run_locked(
    conn: asyncpg.Connection,
    as_of: date | None,
    kind: ForecastKind,
    months: int,
    seed: int,
    framework_version: str | None,
    not_before: datetime | None,
    started: float,
    log: Any,
) -> ForecastPublished | None:
    run_id = uuid4()
    async with conn.transaction(isolation="repeatable_read"):
        if not_before is not None and await conn.fetchval(_ALREADY_RAN, kind, not_before):
            log.info("forecast_skipped", reason="already ran for this tick", since=not_before)
            return None
        abandoned = await conn.fetch(_SWEEP_ABANDONED)
        if abandoned:
            log.warning("forecast_runs_abandoned", run_ids=[str(r[0]) for r in abandoned])
        generated_from, data_date = await conn.fetchrow("SELECT data_as_of(), data_as_of_date()")
        rows = await fetch_open_deals(conn)
        source = "explicit" if as_of is not None else "data"
        if as_of is None:
            if data_date is None:
                raise ForecastUnavailable("no deals yet: nothing to take the as-of date from")
            as_of = data_date
        await conn.execute(_INSERT_RUN, run_id, as_of, kind, months, len(rows), framework_version)
    log = log.bind(run_id=str(run_id), as_of=as_of.isoformat())
    try:
        month_rows, coverage = await asyncio.to_thread(compute_months, rows, as_of, months, seed)
        published = to_published(
            month_rows,
            coverage,
            run_id=run_id,
            as_of=as_of,
            as_of_source=source,
            generated_from=generated_from,
            kind=kind,
            framework_version=framework_version,
            seed=seed,
        )
        async with conn.transaction():
            await conn.executemany(
                _INSERT_SNAPSHOT,
                [
                    (
                        run_id,
                        as_of,
                        m.month,
                        m.deal_count,
                        _numeric(m.pipeline),
                        _numeric(m.weighted),
                        _numeric(m.p10),
                        _numeric(m.p50),
                        _numeric(m.p90),
                        _numeric(m.expected_wins),
                        framework_version,
                    )
                    for m in published.months
                ],
            )
            duration_ms = round((time.perf_counter() - started) * 1000)
            await conn.execute(_COMPLETE_RUN, run_id, duration_ms)
    except (Exception, asyncio.CancelledError) as exc:
        duration_ms = round((time.perf_counter() - started) * 1000)
        with contextlib.suppress(Exception):  # best effort; else swept as abandoned later
            await asyncio.wait_for(
                conn.execute(_FAIL_RUN, run_id, duration_ms, f"{type(exc).__name__}: {exc}"),
                timeout=5,
            )
        log.error("forecast_failed", error=repr(exc), duration_ms=duration_ms)
        raise
    log.info(
        "forecast_completed",
        open_deals=len(rows),
        months=months,
        weighted=published.totals.weighted,
        duration_ms=duration_ms,
    )
    return published


# --------------------------------------------------------------------------- Kafka


async def publish_forecast(producer: Any, topic: str, forecast: ForecastPublished) -> None:
    """Publish a forecast (key = as-of date, headers run_id and kind) and wait for the ack
    (acks=all with the durable producer)."""
    await send_all(
        producer,
        topic,
        [
            (
                forecast.as_of.isoformat().encode(),
                forecast.model_dump_json().encode(),
                [("run_id", str(forecast.run_id).encode()), ("kind", forecast.kind.encode())],
            )
        ],
    )


# --------------------------------------------------------------------------- scheduler


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ForecastScheduler(BackgroundTask):
    """Runs a forecast on a cron schedule (times in UTC) and publishes each run.

    ``cron`` sets the periodic ``scheduled`` runs, ``daily_cron`` the ``daily`` snapshot (one
    run when both fall on the same minute). Each tick runs :func:`run_forecast` as of the
    data's as-of date and publishes the result to ``topic`` with ``producer`` (start it
    before, stop it after). A failing run is logged and counted; the schedule goes on. Ticks
    missed while a run overran are skipped, not caught up.

    For metrics: ``runs`` (completed and published), ``skipped`` (lock held elsewhere or tick
    already run), ``failures``, ``last_run_at`` (wall-clock start of the last completed run),
    ``last_duration_ms`` (run + publish), ``last_as_of``, ``last_error``, ``next_due``.

    ``clock`` and ``sleep`` are test hooks.
    """

    task_name = "forecast-scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: Any,
        *,
        topic: str,
        cron: str = DEFAULT_CRON,
        daily_cron: str = DEFAULT_DAILY_CRON,
        months: int = 6,
        seed: int = 0,
        framework_version: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        for name, expr in (("cron", cron), ("daily_cron", daily_cron)):
            if not croniter.is_valid(expr):
                raise ValueError(f"{name}: {expr!r} is not a valid cron expression")
        if not 1 <= months <= MAX_MONTHS:
            raise ValueError(f"months must be in 1..{MAX_MONTHS}, not {months}")
        self.pool = pool
        self.producer = producer
        self.topic = topic
        self.cron = cron
        self.daily_cron = daily_cron
        self.months = months
        self.seed = seed
        self.framework_version = framework_version
        self._clock = clock
        self._sleep = sleep
        self.log = get_logger(component="forecast_scheduler")
        self.runs = 0
        self.skipped = 0
        self.failures = 0
        self.last_run_at: datetime | None = None
        self.last_duration_ms: int | None = None
        self.last_as_of: date | None = None
        self.last_error: str | None = None
        self.next_due: datetime | None = None

    @classmethod
    def from_settings(
        cls, settings: Any, pool: asyncpg.Pool, producer: Any, *, framework_version: str | None
    ) -> ForecastScheduler:
        """From ``Settings`` (forecasts_topic, forecast_cron, forecast_daily_cron,
        forecast_months, forecast_seed; defaults for the fields it does not have). Whether to
        start it at all (``forecast_enabled``) is the caller's decision."""
        return cls(
            pool,
            producer,
            topic=settings.forecasts_topic,
            cron=settings.forecast_cron,
            daily_cron=settings.forecast_daily_cron,
            months=settings.forecast_months,
            seed=settings.forecast_seed,
            framework_version=framework_version,
        )

    async def run_now(
        self, kind: ForecastKind = "manual", *, not_before: datetime | None = None
    ) -> ForecastPublished | None:
        """Run a forecast as of the data's as-of date and publish it (None: skipped).

        The run is stored before it is published; publishing is retried while the broker is
        unavailable (transient errors), so a stored run is published unless the task is
        cancelled first (consumers dedupe by run_id)."""
        started_at = self._clock()
        t0 = time.perf_counter()
        forecast = await run_forecast(
            self.pool,
            as_of=None,
            kind=kind,
            months=self.months,
            seed=self.seed,
            framework_version=self.framework_version,
            not_before=not_before,
        )
        if forecast is None:
            self.skipped += 1
            return None
        await retry_transient(
            lambda: publish_forecast(self.producer, self.topic, forecast), "forecast_publish"
        )
        self.runs += 1
        self.last_run_at = started_at
        self.last_duration_ms = round((time.perf_counter() - t0) * 1000)
        self.last_as_of = forecast.as_of
        self.last_error = None
        self.log.info(
            "forecast_published",
            run_id=str(forecast.run_id),
            kind=kind,
            topic=self.topic,
            duration_ms=self.last_duration_ms,
        )
        return forecast

    def _not_before(self, due: datetime, kind: ForecastKind) -> datetime:
        """The tick time less a margin for clock skew (at most half the cron's interval)."""
        interval = due - _previous_tick(self.daily_cron if kind == "daily" else self.cron, due)
        return due - min(MAX_CLOCK_SKEW, interval / 2)

    async def _run(self) -> None:
        after = self._clock()
        while True:
            due, kind = next_run(self.cron, self.daily_cron, after)
            self.next_due = due
            delay = (due - self._clock()).total_seconds()
            if delay > 0:
                await self._sleep(delay)
            try:
                await self.run_now(kind, not_before=self._not_before(due, kind))
            except ForecastUnavailable as exc:
                self.skipped += 1
                self.log.info("forecast_skipped", reason=str(exc))
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.log.error("forecast_run_failed", kind=kind, error=repr(exc))
            after = max(due, self._clock())
