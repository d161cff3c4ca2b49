"""Forecast runs: read the open deals, forecast them (``worker.forecast.maths``), store the run
and its monthly snapshots (``worker.store.forecasts``), publish it; on demand or on a cron
schedule (``worker.forecast.scheduler``).

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
    Every run takes the session advisory lock ``worker.store.forecasts.FORECAST_LOCK`` with
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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import numpy as np

from schemas.forecasts import (
    ForecastCoverageCounts,
    ForecastKind,
    ForecastOverdue,
    ForecastPublished,
    ForecastTotals,
)
from worker.forecast.learned import (
    OpenDeals,
    PastErrors,
    WonHistory,
    learned_months,
    month_index,
)
from worker.forecast.maths import (
    ForecastCoverage,
    MonthForecast,
    compute_forecast,
    forecast_coverage,
    from_rows,
    is_overdue,
    overdue_forecast,
)
from worker.kafka.producer import send_all
from worker.log import get_logger
from worker.models.deal import DealModel
from worker.store import forecasts, models

MAX_MONTHS = 60
DEAL_MODEL_KIND = "deal"  # model_versions.kind of the deal model
MAX_CLOCK_SKEW = timedelta(seconds=60)  # between replicas and the database, for not_before


class ForecastUnavailable(RuntimeError):
    """No as-of date: none was given and there are no deals to take the data's as-of from."""


# --------------------------------------------------------------------------- pure parts


DEFAULT_HALF_LIFE_DAYS = 30.0


def compute_months(
    rows: Sequence[Mapping[str, Any]],
    as_of: date,
    months: int,
    seed: int = 0,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> tuple[list[MonthForecast], ForecastCoverage, ForecastOverdue | None]:
    """The months, their coverage and the overdue line for open-deal rows (amount,
    close_probability, expected_close_date): deals past their expected close date (by day) go
    to the overdue line, not to any month."""
    late = [r for r in rows if is_overdue(r["expected_close_date"], as_of)]
    current = [r for r in rows if not is_overdue(r["expected_close_date"], as_of)]
    deals = from_rows(current)
    coverage = forecast_coverage(deals, as_of, months).model_copy(
        update={"total": len(rows), "overdue": len(late)}
    )
    overdue = None
    if late:
        arrays = from_rows(late)
        days = np.array([(as_of - r["expected_close_date"]).days for r in late], dtype=np.float64)
        overdue = overdue_forecast(
            arrays.value, arrays.probability, days, as_of, half_life_days, seed=seed
        )
    return compute_forecast(deals, as_of, months, seed=seed), coverage, overdue


class _Deal:
    """A stored deal row seen through attributes, as the deal model reads a deal state."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.__dict__.update(row)
        self.competitors = int(row["competitor_count"] or 0)


def compute_learned(
    rows: Sequence[Mapping[str, Any]],
    model: DealModel,
    as_of: date,
    months: int,
    history: WonHistory,
    errors: PastErrors,
) -> list[MonthForecast]:
    """The months of the learned forecast (``worker.forecast.learned``) for open-deal rows
    with the deal model's columns; "now" is the as-of's 00:00 UTC."""
    now = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    deals = [_Deal(r) for r in rows]
    predictions = model.predict(deals, now)
    win, loss = predictions.win, predictions.loss
    if win.shape[1] < months:  # beyond the model's horizon no open deal is expected to close
        pad = np.zeros((len(deals), months - win.shape[1]))
        win, loss = np.hstack([win, pad]), np.hstack([loss, pad])
    values = np.array([float(d.amount or 0) for d in deals])
    overdue = np.array([is_overdue(d.expected_close_date, as_of) for d in deals], dtype=bool)
    open_deals = OpenDeals(values, win, loss, overdue)
    learned = learned_months(
        as_of=now, deals=open_deals, history=history, errors=errors, months=months
    )
    return [m.forecast for m in learned]


def learned_coverage(rows: Sequence[Mapping[str, Any]], as_of: date) -> ForecastCoverage:
    """Every open deal counts in the learned months (its timing decides which); overdue ones
    in the parts' ``overdue``."""
    late = sum(is_overdue(r["expected_close_date"], as_of) for r in rows)
    return ForecastCoverage(
        total=len(rows),
        included=len(rows),
        no_close_date=sum(r["expected_close_date"] is None for r in rows),
        overdue=late,
        beyond_horizon=0,
        no_amount=sum(r["amount"] is None for r in rows),
        no_probability=0,
    )


def past_errors(rows: Sequence[Mapping[str, Any]]) -> PastErrors:
    """The errors of earlier learned month-0 forecasts (rows of
    ``worker.store.forecasts.past_month_zero``) that had something won to compare with."""
    model, seasonal, combined = [], [], []
    for r in rows:
        actual = float(r["actual"])
        if actual <= 0 or r["model_point"] is None:
            continue
        model.append((float(r["model_point"]) - actual) / actual)
        if r["seasonal"] is not None:
            seasonal.append((float(r["seasonal"]) - actual) / actual)
            combined.append((float(r["p50"]) - actual) / actual)
    return PastErrors(model, seasonal, combined)


def to_published(
    months: Sequence[MonthForecast],
    coverage: ForecastCoverage,
    overdue: ForecastOverdue | None = None,
    *,
    run_id: UUID,
    as_of: date,
    as_of_source: str,
    generated_from: datetime | None,
    kind: str,
    framework_version: str | None,
    seed: int,
    model_version: str = "heuristic",
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
            "model_version": model_version,
            "months": contract_months,
            "totals": ForecastTotals(
                deal_count=sum(m.deal_count for m in months),
                pipeline=sum(m.pipeline for m in months),
                weighted=sum(m.weighted for m in months),
                expected_wins=sum(m.expected_wins for m in months),
            ),
            "overdue": overdue,
            "coverage": ForecastCoverageCounts(
                open_deals=coverage.total,
                included=coverage.included,
                no_close_date=coverage.no_close_date,
                overdue=coverage.overdue,
                beyond_horizon=coverage.beyond_horizon,
                no_amount=coverage.no_amount,
                no_probability=coverage.no_probability,
            ),
        }
    )


# --------------------------------------------------------------------------- database


async def run_forecast(
    pool: asyncpg.Pool,
    *,
    as_of: date | None,
    kind: ForecastKind,
    months: int = 6,
    seed: int = 0,
    framework_version: str | None,
    not_before: datetime | None = None,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> ForecastPublished | None:
    """Forecast the open deals as of ``as_of`` (None: the data's as-of date), store the run and
    its snapshots, and return the contract to publish. An ``as_of`` before the data's date
    forecasts the pipeline as it was that day (its daily snapshot), or is refused
    (:class:`ForecastUnavailable`) when there is no snapshot of that day.

    Returns ``None`` when the run is skipped: another runner holds the forecast lock, or
    ``not_before`` is given and a run of the same kind (not failed) started at or after it.
    Raises :class:`ForecastUnavailable` when ``as_of`` is None and there are no deals; any
    other error is raised after the run is marked failed.
    """
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be in 1..{MAX_MONTHS}, not {months}")
    log = get_logger(forecast_kind=kind)
    started = time.perf_counter()
    async with pool.acquire() as conn:
        if not await forecasts.try_lock(conn):
            log.info("forecast_skipped", reason="another forecast run holds the lock")
            return None
        try:
            spec = RunSpec(as_of, kind, months, seed, framework_version, not_before, half_life_days)
            return await _run_locked(conn, spec, started, log)
        finally:
            # released with the connection anyway (the pool's reset unlocks all)
            with contextlib.suppress(Exception):
                await forecasts.unlock(conn)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What a run is asked to forecast."""

    as_of: date | None
    kind: ForecastKind
    months: int
    seed: int
    framework_version: str | None
    not_before: datetime | None
    half_life_days: float


async def _read_pipeline(
    conn: asyncpg.Connection,
    as_of: date | None,
    current: Callable[[asyncpg.Connection], Awaitable[list[Any]]],
    on_day: Callable[[asyncpg.Connection, date], Awaitable[list[Any] | None]],
) -> tuple[date, str, datetime | None, list[Any]]:
    """The as-of date, its source, the data's now and the open deals to forecast: today's
    pipeline (``current``), or a past day's daily snapshot (``on_day``)."""
    generated_from, data_date = await forecasts.data_as_of(conn)
    if as_of is None:
        if data_date is None:
            raise ForecastUnavailable("no deals yet: nothing to take the as-of date from")
        return data_date, "data", generated_from, await current(conn)
    if data_date is None or as_of >= data_date:
        return as_of, "explicit", generated_from, await current(conn)
    rows = await on_day(conn, as_of)
    if rows is None:
        raise ForecastUnavailable(
            f"{as_of} is before the data's date {data_date} and there is no daily snapshot of "
            "the pipeline on that day (snapshots are taken by clock ticks)"
        )
    taken_at = min((r["taken_at"] for r in rows), default=None)
    return as_of, "explicit", taken_at, rows


@dataclass(frozen=True)
class _Learned:
    """What a learned run reads besides the deals: the champion and the history."""

    version: str
    model: DealModel
    history: WonHistory
    errors: PastErrors


async def _read_inputs(
    conn: asyncpg.Connection, as_of: date | None
) -> tuple[date, str, datetime | None, list[Any], _Learned | None]:
    """The as-of, its source, the data's now, the open deals and, when there is a deal
    champion, what the learned forecast needs (else None: the heuristic forecast runs)."""
    champion = await models.champion(conn, DEAL_MODEL_KIND)
    if champion is None:
        read = await _read_pipeline(conn, as_of, forecasts.open_deals, forecasts.open_deals_on)
        return (*read, None)
    day, source, generated_from, rows = await _read_pipeline(
        conn, as_of, forecasts.open_deal_states, forecasts.open_deal_states_on
    )
    month_start = datetime(day.year, day.month, 1, tzinfo=UTC)
    sums, first = await forecasts.won_history(conn, month_start)
    history = WonHistory(sums, month_index(first) if first else month_index(day))
    errors = past_errors(await forecasts.past_month_zero(conn, month_start.date()))
    learned = _Learned(champion.version, champion.load(), history, errors)
    return day, source, generated_from, rows, learned


async def _run_locked(
    conn: asyncpg.Connection, spec: RunSpec, started: float, log: Any
) -> ForecastPublished | None:
    run_id = uuid4()
    kind, months, seed, framework_version = (
        spec.kind,
        spec.months,
        spec.seed,
        spec.framework_version,
    )
    async with conn.transaction(isolation="repeatable_read"):
        if spec.not_before is not None and await forecasts.already_ran(conn, kind, spec.not_before):
            log.info("forecast_skipped", reason="already ran for this tick", since=spec.not_before)
            return None
        abandoned = await forecasts.sweep_abandoned(conn)
        if abandoned:
            log.warning("forecast_runs_abandoned", run_ids=[str(r) for r in abandoned])
        as_of, source, generated_from, rows, learned = await _read_inputs(conn, spec.as_of)
        model_version = learned.version if learned else "heuristic"
        await forecasts.insert_run(
            conn, run_id, as_of, kind, months, len(rows), framework_version, model_version
        )
    log = log.bind(run_id=str(run_id), as_of=as_of.isoformat())
    try:
        if learned is None:
            month_rows, coverage, overdue = await asyncio.to_thread(
                compute_months, rows, as_of, months, seed, spec.half_life_days
            )
        else:
            month_rows = await asyncio.to_thread(
                compute_learned,
                rows,
                learned.model,
                as_of,
                months,
                learned.history,
                learned.errors,
            )
            coverage, overdue = learned_coverage(rows, as_of), None
        published = to_published(
            month_rows,
            coverage,
            overdue,
            run_id=run_id,
            as_of=as_of,
            as_of_source=source,
            generated_from=generated_from,
            kind=kind,
            framework_version=framework_version,
            seed=seed,
            model_version=model_version,
        )
        duration_ms = round((time.perf_counter() - started) * 1000)
        await forecasts.complete_run(
            conn, run_id, as_of, published.months, framework_version, duration_ms, overdue
        )
    except (Exception, asyncio.CancelledError) as exc:
        duration_ms = round((time.perf_counter() - started) * 1000)
        with contextlib.suppress(Exception):  # best effort; else swept as abandoned later
            await asyncio.wait_for(
                forecasts.fail_run(conn, run_id, duration_ms, f"{type(exc).__name__}: {exc}"),
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
