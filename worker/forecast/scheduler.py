"""The forecast scheduler: runs a forecast on a cron schedule (UTC) and publishes each run.

The clock decides only *when* to run; what is forecast is as of the data (``worker.forecast.runs``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import asyncpg
from croniter import croniter

from schemas.forecasts import ForecastKind, ForecastPublished
from worker.forecast.runs import (
    DEFAULT_HALF_LIFE_DAYS,
    MAX_CLOCK_SKEW,
    MAX_MONTHS,
    ForecastUnavailable,
    publish_forecast,
    run_forecast,
)
from worker.log import get_logger
from worker.retry import retry_transient
from worker.tasks.base import ScheduledTask, utcnow

DEFAULT_CRON = "*/15 * * * *"
DEFAULT_DAILY_CRON = "0 2 * * *"


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


class ForecastScheduler(ScheduledTask):
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
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        for name, expr in (("cron", cron), ("daily_cron", daily_cron)):
            if not croniter.is_valid(expr):
                raise ValueError(f"{name}: {expr!r} is not a valid cron expression")
        if not 1 <= months <= MAX_MONTHS:
            raise ValueError(f"months must be in 1..{MAX_MONTHS}, not {months}")
        super().__init__(clock, sleep)
        self.pool = pool
        self.producer = producer
        self.topic = topic
        self.cron = cron
        self.daily_cron = daily_cron
        self.months = months
        self.seed = seed
        self.framework_version = framework_version
        self.half_life_days = half_life_days
        self.log = get_logger(component="forecast_scheduler")
        self.runs = 0
        self.skipped = 0
        self.failures = 0
        self.last_run_at: datetime | None = None
        self.last_duration_ms: int | None = None
        self.last_as_of: date | None = None
        self.last_error: str | None = None
        self._next_kind: ForecastKind = "scheduled"  # of next_due

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        pool: asyncpg.Pool,
        producer: Any,
        *,
        framework_version: str | None,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
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
            half_life_days=half_life_days,
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
            half_life_days=self.half_life_days,
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

    def due_after(self, after: datetime) -> datetime:
        due, self._next_kind = next_run(self.cron, self.daily_cron, after)
        return due

    async def run_due(self, due: datetime) -> None:
        kind = self._next_kind
        try:
            await self.run_now(kind, not_before=self._not_before(due, kind))
        except ForecastUnavailable as exc:
            self.skipped += 1
            self.log.info("forecast_skipped", reason=str(exc))
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.log.error("forecast_run_failed", kind=kind, error=repr(exc))
