"""Forecast runs, the scheduler, the dashboard and their CLI against real PostgreSQL and Kafka.

The read models aggregate the whole deals table, so this module migrates a database of its own
and computes every expectation in Python from the rows it inserted.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
import typer
from typer.testing import CliRunner

import worker.forecast.runs as fj
from schemas.forecasts import ForecastPublished
from tests.services import fresh_database, read_all, unique
from worker.cli.forecast import register
from worker.forecast.dashboard import load_dashboard
from worker.forecast.maths import compute_forecast, from_rows
from worker.forecast.runs import ForecastUnavailable, run_forecast
from worker.forecast.scheduler import ForecastScheduler
from worker.kafka.producer import durable_producer
from worker.kafka.topics import ensure_topics
from worker.store.forecasts import FORECAST_LOCK

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)  # the newest event in the data set
TODAY = NOW.date()
OPEN = ("prospecting", "qualification", "proposal", "negotiation")
MONTHS = 6
FW = "test-fw-1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Deal:
    deal_id: str
    stage: str
    amount: Decimal | None
    close_probability: Decimal | None
    expected_close_date: date | None
    health_category: str | None
    last_event_time: datetime

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN

    def row(self) -> dict:
        return {
            "amount": self.amount,
            "close_probability": self.close_probability,
            "expected_close_date": self.expected_close_date,
        }


def make_deals(prefix: str, rng: random.Random, n: int = 40) -> list[Deal]:
    deals = []
    for i in range(n):
        stage = rng.choice((*OPEN, *OPEN, *OPEN, "closed_won", "closed_lost"))
        due = TODAY + timedelta(days=rng.randint(-75, 230)) if rng.random() > 0.1 else None
        deals.append(
            Deal(
                deal_id=f"{prefix}-{i:03d}",
                stage=stage,
                amount=None if i % 13 == 5 else Decimal(f"{rng.uniform(500, 60_000):.2f}"),
                close_probability=None
                if i % 11 == 7
                else Decimal(rng.choice(("0", "100", f"{rng.uniform(1, 99):.2f}"))),
                expected_close_date=due,
                health_category=rng.choice((None, "healthy", "warning", "critical")),
                last_event_time=NOW - timedelta(hours=rng.randint(1, 2000)),
            )
        )
    deals[0] = Deal(  # the data's now, and exactly at the alert threshold: at risk
        f"{prefix}-000", "proposal", Decimal("5000.00"), Decimal("55.00"), TODAY, "warning", NOW
    )
    deals[1] = Deal(  # due exactly 90 days ahead: inside the weighted window
        f"{prefix}-001", "negotiation", Decimal("12000.00"), Decimal("80.00"),
        TODAY + timedelta(days=90), "critical", NOW - timedelta(days=1),
    )  # fmt: skip
    deals[2] = Deal(  # 91 days ahead: outside
        f"{prefix}-002", "qualification", Decimal("7000.00"), Decimal("30.00"),
        TODAY + timedelta(days=91), "healthy", NOW - timedelta(days=1),
    )  # fmt: skip
    return deals


INSERT_DEAL = """
INSERT INTO deals (deal_id, stage, amount, close_probability, expected_close_date,
                   health_category, created_at, stage_entered_at, closed_at, last_event_id,
                   last_event_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10)
"""


async def insert_deals(conn: asyncpg.Connection, deals: list[Deal]) -> None:
    await conn.executemany(
        INSERT_DEAL,
        [
            (
                d.deal_id,
                d.stage,
                d.amount,
                d.close_probability,
                d.expected_close_date,
                d.health_category,
                d.last_event_time - timedelta(days=30),
                None if d.is_open else d.last_event_time,
                f"{d.deal_id}-e",
                d.last_event_time,
            )
            for d in deals
        ],
    )


@pytest.fixture(scope="module")
async def fc_url(services) -> AsyncIterator[str]:
    """A database of this module's own, migrated, dropped afterwards."""
    async with fresh_database(services.database_url, "revintel_fc") as url:
        yield url


@pytest.fixture(scope="module")
async def deals(fc_url: str) -> list[Deal]:
    data = make_deals(unique("fcj"), random.Random(20260314))
    conn = await asyncpg.connect(fc_url)
    try:
        await insert_deals(conn, data)
    finally:
        await conn.close()
    return data


@pytest.fixture(scope="module")
async def pool(fc_url: str, deals) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(fc_url, min_size=1, max_size=3)
    yield p
    await p.close()


def open_rows(deals: list[Deal]) -> list[dict]:
    return [d.row() for d in deals if d.is_open]


HALF_LIFE_DAYS = 30  # the overdue line's default: a probability halves every 30 days overdue


def is_overdue(d: Deal, as_of: date) -> bool:
    """Past its expected close date, by day (not by month)."""
    return d.is_open and d.expected_close_date is not None and d.expected_close_date < as_of


def horizon_end(as_of: date, months: int) -> date:
    """The first day of the month ``months`` after the as-of month (month 0): with the horizon
    as ``months``, the first day after the horizon."""
    y, m = divmod(as_of.year * 12 + as_of.month - 1 + months, 12)
    return date(y, m + 1, 1)


def hand_coverage(deals: list[Deal], as_of: date, months: int) -> dict:
    """Which open deals the forecast counts: the months take deals due from as_of on, inside
    the horizon; deals due before as_of go to the overdue line, in no month."""
    open_ = [d for d in deals if d.is_open]
    end = horizon_end(as_of, months)
    inside = [d for d in open_ if d.expected_close_date and as_of <= d.expected_close_date < end]
    return {
        "open_deals": len(open_),
        "included": len(inside),
        "no_close_date": sum(d.expected_close_date is None for d in open_),
        "overdue_folded": 0,
        "overdue": sum(is_overdue(d, as_of) for d in open_),
        "beyond_horizon": sum(bool(d.expected_close_date and d.expected_close_date >= end)
                              for d in open_),
        "no_amount": sum(d.amount is None for d in inside),
        "no_probability": sum(d.close_probability is None for d in inside),
    }  # fmt: skip


def hand_month_sums(deals: list[Deal], as_of: date, months: int) -> list[tuple]:
    """(month, deal_count, pipeline, weighted, expected_wins) of each month, in Decimal."""
    out = []
    for k in range(months):
        start, end = horizon_end(as_of, k), horizon_end(as_of, k + 1)
        mine = [
            d
            for d in deals
            if d.is_open
            and d.expected_close_date is not None
            and max(start, as_of) <= d.expected_close_date < end
        ]
        out.append(
            (
                start,
                len(mine),
                sum((d.amount or 0 for d in mine), Decimal(0)),
                sum(((d.amount or 0) * (d.close_probability or 0) / 100 for d in mine), Decimal(0)),
                sum((d.close_probability or 0 for d in mine), Decimal(0)) / 100,
            )
        )
    return out


def expected(deals: list[Deal], as_of: date, months: int = MONTHS, seed: int = 0):
    """The months (the maths over the open deals due from ``as_of`` on: overdue ones are in no
    month), checked against sums by hand, and the coverage counted by hand."""
    current = [d.row() for d in deals if d.is_open and not is_overdue(d, as_of)]
    want = compute_forecast(from_rows(current), as_of, months, seed=seed)
    for m, (month, count, pipeline, weighted, wins) in zip(
        want, hand_month_sums(deals, as_of, months), strict=True
    ):
        assert (m.month, m.deal_count) == (month, count)
        assert m.pipeline == pytest.approx(float(pipeline), rel=1e-12)
        assert m.weighted == pytest.approx(float(weighted), rel=1e-12)
        assert m.expected_wins == pytest.approx(float(wins), rel=1e-12)
    return want, hand_coverage(deals, as_of, months)


def exact_quantiles(values: list[float], probs: list[float]) -> list[float]:
    """P10/P50/P90 of the sum of independent Bernoulli(p) x v, by enumerating every outcome:
    the smallest won value whose cumulative probability reaches the level."""
    outcomes = [(0.0, 1.0)]
    for v, p in zip(values, probs, strict=True):
        outcomes = [(w + v, q * p) for w, q in outcomes] + [(w, q * (1 - p)) for w, q in outcomes]
    outcomes.sort()
    out = []
    for level in (0.1, 0.5, 0.9):
        cumulative = 0.0
        for w, q in outcomes:
            cumulative += q
            if cumulative >= level - 1e-12:
                out.append(w)
                break
    return out


def expected_overdue(deals: list[Deal], as_of: date) -> dict | None:
    """The overdue line by hand: open deals due before as_of, each close probability times
    0.5 ** (days overdue / 30)."""
    late = [d for d in deals if is_overdue(d, as_of)]
    if not late:
        return None
    days = [(as_of - d.expected_close_date).days for d in late]
    values = [float(d.amount or 0) for d in late]
    probs = [
        float(d.close_probability or 0) / 100 * 0.5 ** (n / HALF_LIFE_DAYS)
        for d, n in zip(late, days, strict=True)
    ]
    assert all(n >= 1 for n in days) and all(p < 1 for p in probs)  # none is certain any more
    uncertain = [(v, p) for v, p in zip(values, probs, strict=True) if v > 0 and p > 0]
    assert len(uncertain) <= 16  # enumerated exactly
    p10, p50, p90 = exact_quantiles([v for v, _ in uncertain], [p for _, p in uncertain])
    return {
        "deal_count": len(late),
        "pipeline": sum(values),
        "weighted": sum(v * p for v, p in zip(values, probs, strict=True)),
        "p10": p10,
        "p50": p50,
        "p90": p90,
        "expected_wins": sum(probs),
        "method": "exact" if uncertain else "deterministic",
        "half_life_days": HALF_LIFE_DAYS,
        "median_days_overdue": statistics.median(days),
    }


def assert_overdue_matches(got, want: dict | None) -> None:
    if want is None:
        assert got is None
        return
    assert got is not None
    assert (got.deal_count, got.method) == (want["deal_count"], want["method"])
    assert (got.half_life_days, got.median_days_overdue) == (
        want["half_life_days"],
        want["median_days_overdue"],
    )
    for f in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins"):
        assert getattr(got, f) == pytest.approx(want[f], rel=1e-9, abs=1e-6), f


def assert_months_match(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.month, g.deal_count, g.method) == (w.month, w.deal_count, w.method)
        for f in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins"):
            assert getattr(g, f) == pytest.approx(getattr(w, f), rel=1e-9, abs=1e-6), f


async def run_ids(pool: asyncpg.Pool) -> set[uuid.UUID]:
    return {r[0] for r in await pool.fetch("SELECT run_id FROM forecast_runs")}


async def new_run(pool: asyncpg.Pool, before: set[uuid.UUID]) -> asyncpg.Record:
    rows = await pool.fetch("SELECT * FROM forecast_runs WHERE NOT run_id = ANY($1)", before)
    assert len(rows) == 1, rows
    return rows[0]


async def snapshot_count(pool: asyncpg.Pool, run_id: uuid.UUID | None = None) -> int:
    if run_id is None:
        return await pool.fetchval("SELECT count(*) FROM forecast_snapshots")
    return await pool.fetchval("SELECT count(*) FROM forecast_snapshots WHERE run_id = $1", run_id)


class Gate:
    """Holds ``compute_months`` (which runs in a worker thread) until the test lets it go, so
    the test knows a run is inside its computation, holding the lock, instead of hoping that
    a sleep makes runs overlap."""

    def __init__(self) -> None:
        self.entered = threading.Event()  # a run is computing
        self.release = threading.Event()  # the test lets it finish
        self.left = threading.Event()  # the computing thread has returned
        self.original = fj.compute_months

    def __call__(self, *args, **kwargs):
        self.entered.set()
        try:
            if not self.release.wait(30):
                raise TimeoutError("the test never released the gate")
            return self.original(*args, **kwargs)
        finally:
            self.left.set()

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 30), "no run reached compute_months"

    async def open_and_wait_left(self) -> None:
        self.release.set()
        if self.entered.is_set():
            assert await asyncio.to_thread(self.left.wait, 30), "compute_months never returned"


# --------------------------------------------------------------------------- runs


async def test_run_stores_a_completed_run_and_snapshots_matching_the_maths(pool, deals):
    want, coverage = expected(deals, TODAY, seed=3)
    assert {m.method for m in want} <= {"exact", "deterministic"}  # order-independent figures
    f = await run_forecast(pool, as_of=None, kind="manual", months=MONTHS, seed=3,
                           framework_version=FW)  # fmt: skip
    assert f is not None
    assert (f.as_of, f.as_of_source, f.generated_from) == (TODAY, "data", NOW)
    assert (f.kind, f.horizon_months, f.framework_version, f.seed) == ("manual", MONTHS, FW, 3)
    assert_months_match(f.months, want)
    assert f.months[0].month == date(2026, 3, 1)
    # deals due before today are in no month, but in the coverage and the overdue line
    assert f.coverage.model_dump() == coverage
    c = f.coverage
    assert c.overdue > 0 and c.no_close_date > 0 and c.beyond_horizon > 0
    assert c.open_deals == sum(d.is_open for d in deals)
    assert c.included + c.overdue + c.no_close_date + c.beyond_horizon == c.open_deals
    # one of them is due earlier this month: overdue by day, not by month
    assert any(date(2026, 3, 1) <= d.expected_close_date < TODAY
               for d in deals if is_overdue(d, TODAY))  # fmt: skip
    assert_overdue_matches(f.overdue, expected_overdue(deals, TODAY))
    # the totals are the months' sums: the overdue line is not in them
    assert f.totals.deal_count == sum(m.deal_count for m in want) == c.included
    assert f.totals.pipeline == pytest.approx(sum(m.pipeline for m in want))
    assert f.totals.weighted == pytest.approx(sum(m.weighted for m in want))
    assert f.totals.expected_wins == pytest.approx(sum(m.expected_wins for m in want))

    run = await pool.fetchrow("SELECT * FROM forecast_runs WHERE run_id = $1", f.run_id)
    assert run["status"] == "completed"
    assert (run["as_of"], run["kind"], run["horizon_months"]) == (TODAY, "manual", MONTHS)
    assert (run["deal_count"], run["framework_version"]) == (c.open_deals, FW)
    assert run["finished_at"] >= run["started_at"]
    assert run["duration_ms"] >= 0 and run["error"] is None
    assert run["overdue_deals"] == f.overdue.deal_count
    for field in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins"):
        assert float(run[f"overdue_{field}"]) == getattr(f.overdue, field)  # stored exactly

    snaps = await pool.fetch(
        "SELECT * FROM forecast_snapshots WHERE run_id = $1 ORDER BY month", f.run_id
    )
    assert [s["month"] for s in snaps] == [m.month for m in f.months]
    for s, m in zip(snaps, f.months, strict=True):
        assert (s["as_of"], s["deal_count"], s["framework_version"]) == (TODAY, m.deal_count, FW)
        for field in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins"):
            assert float(s[field]) == getattr(m, field)  # stored exactly (shortest decimal)


async def test_explicit_as_of_is_used_instead_of_the_data(pool, deals):
    """An as-of on or after the data's date forecasts today's deals as of that day."""
    as_of = date(2026, 4, 20)
    f = await run_forecast(pool, as_of=as_of, kind="manual", months=4, framework_version=None)
    assert (f.as_of, f.as_of_source, f.generated_from) == (as_of, "explicit", NOW)
    assert [m.month for m in f.months] == [date(2026, m, 1) for m in (4, 5, 6, 7)]
    want, coverage = expected(deals, as_of, 4)
    assert_months_match(f.months, want)
    assert f.coverage.model_dump() == coverage
    # overdue as of that day: deals due from today to 19 April, April ones included
    assert any(date(2026, 4, 1) <= d.expected_close_date < as_of
               for d in deals if is_overdue(d, as_of))  # fmt: skip
    assert f.coverage.overdue > expected_overdue(deals, TODAY)["deal_count"]
    assert_overdue_matches(f.overdue, expected_overdue(deals, as_of))


async def test_snapshots_accumulate_over_runs(pool, deals):
    before = await snapshot_count(pool)
    first = await run_forecast(pool, as_of=None, kind="daily", framework_version=FW)
    second = await run_forecast(pool, as_of=None, kind="scheduled", framework_version=FW)
    assert first.run_id != second.run_id
    assert await snapshot_count(pool) == before + 2 * MONTHS
    assert await snapshot_count(pool, first.run_id) == MONTHS
    # the trend view reads the latest completed run of the month
    latest = await pool.fetchval(
        "SELECT run_id FROM forecast_trend_mom WHERE month = $1", date(2026, 3, 1)
    )
    assert latest == second.run_id


async def test_a_run_is_skipped_while_another_holds_the_lock(pool, fc_url, deals):
    holder = await asyncpg.connect(fc_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", FORECAST_LOCK)
        before = await run_ids(pool)
        assert await run_forecast(pool, as_of=None, kind="manual", framework_version=FW) is None
        assert await run_ids(pool) == before
    finally:
        await holder.close()  # releases the lock
    assert await run_forecast(pool, as_of=None, kind="manual", framework_version=FW) is not None


async def test_two_concurrent_runs_on_two_pools_run_once(pool, fc_url, deals, monkeypatch):
    """Two runs started together: the one that gets the lock is held inside its computation
    until the other has returned (skipped), and the lock stays held all that time."""
    gate = Gate()
    monkeypatch.setattr(fj, "compute_months", gate)
    other = await asyncpg.create_pool(fc_url, min_size=1, max_size=1)
    prober = await asyncpg.connect(fc_url)
    try:
        before = await run_ids(pool)
        runs = [
            asyncio.create_task(run_forecast(p, as_of=None, kind="scheduled", framework_version=FW))
            for p in (pool, other)
        ]
        try:
            await gate.wait_entered()
            finished, pending = await asyncio.wait(
                runs, timeout=30, return_when=asyncio.FIRST_COMPLETED
            )
            assert (len(finished), len(pending)) == (1, 1), "expected one run to be skipped"
            assert finished.pop().result() is None  # skipped at once: the lock is taken
            # mid-computation the lock is still held: a third runner cannot take it
            assert not await prober.fetchval("SELECT pg_try_advisory_lock($1)", FORECAST_LOCK)
        finally:
            await gate.open_and_wait_left()
            done = await asyncio.wait_for(asyncio.gather(*runs), 30)
    finally:
        await prober.close()
        await other.close()
    (completed,) = [r for r in done if r is not None]
    run = await new_run(pool, before)
    assert (run["run_id"], run["status"]) == (completed.run_id, "completed")


async def test_not_before_skips_a_tick_another_replica_already_ran(pool, deals):
    tick = await pool.fetchval("SELECT clock_timestamp()")
    first = await run_forecast(
        pool, as_of=None, kind="daily", framework_version=FW, not_before=tick
    )
    assert first is not None
    again = await run_forecast(
        pool, as_of=None, kind="daily", framework_version=FW, not_before=tick
    )
    assert again is None
    other_kind = await run_forecast(
        pool, as_of=None, kind="scheduled", framework_version=FW, not_before=tick
    )
    assert other_kind is not None


async def test_a_run_left_running_by_a_dead_runner_is_marked_abandoned(pool, deals):
    dead = uuid.uuid4()
    await pool.execute(
        "INSERT INTO forecast_runs (run_id, as_of, kind) VALUES ($1, $2, 'scheduled')",
        dead,
        TODAY,
    )
    assert await run_forecast(pool, as_of=None, kind="manual", framework_version=FW)
    run = await pool.fetchrow("SELECT * FROM forecast_runs WHERE run_id = $1", dead)
    assert run["status"] == "failed" and run["finished_at"] is not None
    assert run["error"].startswith("abandoned")


# --------------------------------------------------------------------------- failures


async def assert_failed_without_snapshots(pool, before, fragment: str) -> None:
    run = await new_run(pool, before)
    assert run["status"] == "failed", dict(run)
    assert fragment in run["error"]
    assert run["finished_at"] is not None
    assert await snapshot_count(pool, run["run_id"]) == 0
    assert await pool.fetchval("SELECT count(*) FROM forecast_runs WHERE status = 'running'") == 0


async def test_a_failing_computation_marks_the_run_failed(pool, deals, monkeypatch):
    message = f"boom-{uuid.uuid4().hex[:6]}"

    def explode(*args, **kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(fj, "compute_forecast", explode)
    before, snaps = await run_ids(pool), await snapshot_count(pool)
    with pytest.raises(RuntimeError, match=message):
        await run_forecast(pool, as_of=None, kind="manual", framework_version=FW)
    await assert_failed_without_snapshots(pool, before, f"RuntimeError: {message}")
    assert await snapshot_count(pool) == snaps


async def test_a_failure_midway_through_the_snapshots_leaves_none(pool, deals, monkeypatch):
    """The last month violates the table's p10 <= p50 check: the months before it were
    already inserted in the same transaction, and must be gone."""
    real = compute_forecast

    def broken_last_month(*args, **kwargs):
        months = real(*args, **kwargs)
        bad = months[-1].model_copy(update={"p10": months[-1].p50 + 1})
        return [*months[:-1], bad]

    monkeypatch.setattr(fj, "compute_forecast", broken_last_month)
    before, snaps = await run_ids(pool), await snapshot_count(pool)
    with pytest.raises(asyncpg.CheckViolationError, match='"forecast_snapshots_check"'):
        await run_forecast(pool, as_of=None, kind="manual", framework_version=FW)
    await assert_failed_without_snapshots(pool, before, "CheckViolationError")
    assert await snapshot_count(pool) == snaps


async def test_a_cancelled_run_is_marked_failed(pool, deals, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(fj, "compute_months", gate)
    before = await run_ids(pool)
    task = asyncio.create_task(
        run_forecast(pool, as_of=None, kind="scheduled", framework_version=FW)
    )
    try:
        await gate.wait_entered()  # the run is stored as running and is computing
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_failed_without_snapshots(pool, before, "CancelledError")
    finally:
        await gate.open_and_wait_left()  # the computing thread is done before the next test


async def test_without_deals_the_as_of_must_be_given(services):
    async with fresh_database(services.database_url, "revintel_fc") as url:
        empty = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            with pytest.raises(ForecastUnavailable):
                await run_forecast(empty, as_of=None, kind="manual", framework_version=FW)
            assert await empty.fetchval("SELECT count(*) FROM forecast_runs") == 0
            f = await run_forecast(empty, as_of=TODAY, kind="manual", months=2,
                                   framework_version=FW)  # fmt: skip
            assert f.generated_from is None
            assert [(m.deal_count, m.pipeline, m.p90) for m in f.months] == [(0, 0, 0)] * 2
            data = await load_dashboard(empty)
            assert (data.as_of, data.forecast_source, data.kpis.open_deals) == (None, "none", 0)
            result = await asyncio.to_thread(invoke, url, "forecast")
            assert result.exit_code == 2
            assert "no deals yet" in result.output and "--as-of" in result.output
        finally:
            await empty.close()


# --------------------------------------------------------------------------- scheduler


@pytest.fixture
async def forecasts_topic(services) -> str:
    topic = unique("test.forecasts")
    await ensure_topics(services.bootstrap, [topic], 1)
    return topic


@pytest.fixture
async def kafka_producer(services):
    producer = durable_producer(services.bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def test_run_now_publishes_the_forecast(pool, deals, services, forecasts_topic,
                                              kafka_producer):  # fmt: skip
    scheduler = ForecastScheduler(
        pool, kafka_producer, topic=forecasts_topic, months=3, seed=5, framework_version=FW
    )
    f = await scheduler.run_now("scheduled")
    assert f is not None and scheduler.runs == 1 and scheduler.last_as_of == TODAY
    (record,) = await read_all(services.bootstrap, forecasts_topic)
    assert record.key == TODAY.isoformat().encode()
    assert dict(record.headers) == {"run_id": str(f.run_id).encode(), "kind": b"scheduled"}
    got = ForecastPublished.model_validate_json(record.value)
    assert got == f
    want, coverage = expected(deals, TODAY, 3, seed=5)
    assert_months_match(got.months, want)
    assert got.coverage.model_dump() == coverage
    assert_overdue_matches(got.overdue, expected_overdue(deals, TODAY))
    stored = await pool.fetchval("SELECT status FROM forecast_runs WHERE run_id = $1", f.run_id)
    assert stored == "completed"


class SteppedClock:
    """The scheduler's ``clock`` and ``sleep``: time moves only when the test lets a requested
    sleep end (``advance``), so no tick depends on the wall clock. A sleep request is also the
    sign that the scheduler has finished the tick before it."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._sleeps: asyncio.Queue[tuple[float, asyncio.Event]] = asyncio.Queue()

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.Event()
        await self._sleeps.put((seconds, wake))
        await wake.wait()

    async def requested(self) -> tuple[float, asyncio.Event]:
        """The next sleep the scheduler asks for (it is then waiting in it)."""
        return await asyncio.wait_for(self._sleeps.get(), 30)

    async def advance(self) -> float:
        """Let the scheduler's next sleep pass in full; return its length in seconds."""
        seconds, wake = await self.requested()
        self.now += timedelta(seconds=seconds)
        wake.set()
        return seconds


async def test_the_schedule_runs_and_publishes_each_tick(pool, deals, services, forecasts_topic,
                                                          kafka_producer):  # fmt: skip
    # Far in the future: no run the earlier tests stored (database clock) counts as having
    # already run one of these ticks (``not_before``).
    clock = SteppedClock(datetime(2100, 1, 1, 1, 44, 30, tzinfo=UTC))
    scheduler = ForecastScheduler(
        pool,
        kafka_producer,
        topic=forecasts_topic,
        cron="*/15 * * * *",
        daily_cron="0 2 * * *",
        framework_version=FW,
        clock=clock,
        sleep=clock.sleep,
    )
    scheduler.start()
    try:
        assert await clock.advance() == 30  # until 01:45, a scheduled tick
        assert await clock.advance() == 900  # until 02:00: both schedules, one daily run
        seconds, _ = await clock.requested()  # waiting for 02:15: both ticks are done
        assert seconds == 900
    finally:
        await scheduler.stop()
    assert (scheduler.runs, scheduler.skipped, scheduler.failures) == (2, 0, 0)
    assert scheduler.last_run_at == datetime(2100, 1, 1, 2, 0, tzinfo=UTC)
    assert scheduler.next_due == datetime(2100, 1, 1, 2, 15, tzinfo=UTC)
    assert scheduler.last_duration_ms is not None and scheduler.last_as_of == TODAY
    records = await read_all(services.bootstrap, forecasts_topic)
    published = [ForecastPublished.model_validate_json(r.value) for r in records]
    assert [f.kind for f in published] == ["scheduled", "daily"]
    stored = await pool.fetch(
        "SELECT kind, status FROM forecast_runs WHERE run_id = ANY($1::uuid[])",
        [f.run_id for f in published],
    )
    assert sorted(tuple(r) for r in stored) == [("daily", "completed"), ("scheduled", "completed")]


# --------------------------------------------------------------------------- dashboard


def python_kpis(deals: list[Deal], as_of: date, threshold: Decimal) -> dict:
    open_ = [d for d in deals if d.is_open]
    amounts = [d.amount for d in open_ if d.amount is not None]
    return {
        "open_pipeline": sum(amounts, Decimal(0)),
        "open_deals": len(open_),
        "avg_deal_size": sum(amounts, Decimal(0)) / len(amounts),
        "weighted_90d": sum(
            (
                d.amount * d.close_probability / 100
                for d in open_
                if d.amount is not None
                and d.close_probability is not None
                and d.expected_close_date is not None
                and d.expected_close_date <= as_of + timedelta(days=90)
            ),
            Decimal(0),
        ),
        "at_risk": sum(
            1
            for d in open_
            if d.amount is not None
            and d.amount >= threshold
            and d.health_category in ("warning", "critical")
        ),
    }


async def test_dashboard_figures_match_the_rows(pool, deals):
    f = await run_forecast(pool, as_of=None, kind="manual", framework_version=FW)
    data = await load_dashboard(pool)
    threshold = await pool.fetchval("SELECT framework_param('alert_value_threshold')")
    want = python_kpis(deals, TODAY, threshold)
    k = data.kpis
    assert (data.as_of, data.as_of_source, data.data_as_of) == (TODAY, "data", NOW)
    assert k.open_pipeline == want["open_pipeline"]
    assert k.open_deals == want["open_deals"]
    assert float(k.avg_deal_size) == pytest.approx(float(want["avg_deal_size"]), rel=1e-12)
    assert k.weighted_90d == want["weighted_90d"]
    assert k.at_risk == want["at_risk"] > 0
    # pipeline by stage
    assert [s.stage for s in data.stages] == list(OPEN)
    for s in data.stages:
        in_stage = [d for d in deals if d.stage == s.stage]
        assert s.deal_count == len(in_stage)
        assert s.total_value == sum((d.amount for d in in_stage if d.amount), Decimal(0))
    assert sum(s.total_value for s in data.stages) == k.open_pipeline
    # monthly forecast: the latest run of this as-of, from its snapshots
    assert (data.forecast_source, data.forecast_run_id) == ("snapshot", f.run_id)
    assert [m.model_dump(exclude={"method"}) for m in data.forecast] == [
        m.model_dump(exclude={"method", "parts"}) for m in f.months
    ]


async def test_dashboard_with_an_explicit_as_of_computes_the_forecast(pool, deals):
    as_of = date(2026, 3, 20)  # after the data's date (today's deals); no run is stored for it
    data = await load_dashboard(pool, as_of, months=3)
    assert (data.as_of, data.as_of_source, data.forecast_source) == (as_of, "explicit", "computed")
    threshold = await pool.fetchval("SELECT framework_param('alert_value_threshold')")
    assert data.kpis.weighted_90d == python_kpis(deals, as_of, threshold)["weighted_90d"]
    want, _ = expected(deals, as_of, 3)
    assert_months_match(data.forecast, want)
    # deals due 14 to 19 March are overdue as of the 20th: the overdue line, not March
    late = expected_overdue(deals, as_of)
    assert late["deal_count"] > expected_overdue(deals, TODAY)["deal_count"]
    assert data.overdue is not None
    assert data.overdue.deal_count == late["deal_count"]
    for f in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins"):
        assert getattr(data.overdue, f) == pytest.approx(late[f], rel=1e-9, abs=1e-6), f
    assert all(s.avg_days_in_stage is not None for s in data.stages if s.deal_count)


# --------------------------------------------------------------------------- CLI


def invoke(database_url: str, *args: str):
    app = typer.Typer()
    register(app)
    env = {"DATABASE_URL": database_url, "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


async def test_cli_forecast_prints_and_stores_the_run(pool, fc_url, deals):
    before = await run_ids(pool)
    result = await asyncio.to_thread(invoke, fc_url, "forecast", "--months", "3", "--seed", "2")
    assert result.exit_code == 0, result.output
    run = await new_run(pool, before)
    assert (run["kind"], run["status"], run["horizon_months"]) == ("manual", "completed", 3)
    assert f"Forecast as of 2026-03-14 (run {run['run_id']}, stored)" in result.output
    want, coverage = expected(deals, TODAY, 3, seed=2)
    late = expected_overdue(deals, TODAY)
    lines = result.output.splitlines()
    for label, m in [("overdue", late), *((f"{m.month:%b %Y}", m.model_dump()) for m in want)]:
        (line,) = [x for x in lines if x.strip().startswith(label)]
        cells = line.split()[len(label.split()) :]
        assert cells == [
            str(m["deal_count"]),
            *(f"{m[f]:,.0f}" for f in ("pipeline", "weighted", "p10", "p50", "p90")),
            f"{m['expected_wins']:,.1f}",
        ], label
    (total,) = [x for x in lines if x.strip().startswith("total")]
    assert total.split()[1:3] == [  # the months' sums, without the overdue line
        str(sum(m.deal_count for m in want)),
        f"{sum(m.pipeline for m in want):,.0f}",
    ]
    assert f"{coverage['open_deals']:,} open deals" in result.output
    assert f"{coverage['overdue']:,} past their expected close date" in result.output


async def test_cli_forecast_publishes_when_asked(pool, fc_url, deals, services):
    topic = unique("test.forecasts")
    app = typer.Typer()
    register(app)
    env = {
        "DATABASE_URL": fc_url,
        "KAFKA_BOOTSTRAP_SERVERS": services.bootstrap,
        "REVINTEL_FORECASTS_TOPIC": topic,
        "COLUMNS": "200",
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["forecast", "--publish", "--as-of", "2026-04-01"], env=env
    )
    assert result.exit_code == 0, result.output
    assert f"published to {topic}" in result.output
    (record,) = await read_all(services.bootstrap, topic)
    f = ForecastPublished.model_validate_json(record.value)
    assert (f.kind, f.as_of, f.as_of_source) == ("manual", date(2026, 4, 1), "explicit")
    assert record.key == b"2026-04-01"
    assert_months_match(f.months, expected(deals, date(2026, 4, 1))[0])
    assert_overdue_matches(f.overdue, expected_overdue(deals, date(2026, 4, 1)))


async def test_cli_dashboard_writes_the_chart(pool, fc_url, deals, tmp_path):
    chart = tmp_path / "forecast.png"
    result = await asyncio.to_thread(invoke, fc_url, "dashboard", "--chart", str(chart))
    assert result.exit_code == 0, result.output
    threshold = await pool.fetchval("SELECT framework_param('alert_value_threshold')")
    want = python_kpis(deals, TODAY, threshold)
    assert "Revenue dashboard as of 2026-03-14" in result.output
    assert f"{want['open_pipeline']:,.0f}" in result.output
    assert f"{want['weighted_90d']:,.0f}" in result.output
    assert f"wrote chart to {chart}" in result.output
    assert chart.read_bytes().startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------- overdue, past as-of
# A database of a few hand-written deals and daily snapshots; every expected figure is worked
# out by hand in the comments.

SNAPSHOT_DAY = date(2026, 2, 10)  # a daily snapshot of the pipeline was taken that day
TAKEN_AT = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
NO_SNAPSHOT_DAY = date(2026, 2, 11)  # before the data's date, and no snapshot of it

HAND_DEALS = [
    # 30 days overdue today (12 Feb -> 14 Mar): p 0.8 -> 0.4, weighted 4,000
    Deal("h-late30", "negotiation", Decimal("10000.00"), Decimal("80.00"), date(2026, 2, 12),
         "critical", NOW),
    # 60 days overdue (13 Jan -> 14 Mar): p 0.5 -> 0.125, weighted 250
    Deal("h-late60", "proposal", Decimal("2000.00"), Decimal("50.00"), date(2026, 1, 13),
         "healthy", NOW - timedelta(days=2)),
    # due today: not overdue, month 0, certain
    Deal("h-today", "proposal", Decimal("1000.00"), Decimal("100.00"), TODAY, None,
         NOW - timedelta(days=1)),
    # month 1
    Deal("h-april", "qualification", Decimal("4000.00"), Decimal("25.00"), date(2026, 4, 30),
         "warning", NOW - timedelta(days=3)),
    Deal("h-nodate", "prospecting", Decimal("500.00"), Decimal("10.00"), None, None,
         NOW - timedelta(days=4)),
    Deal("h-won", "closed_won", Decimal("9000.00"), Decimal("100.00"), date(2026, 2, 1), None,
         NOW - timedelta(days=5)),
]  # fmt: skip

# (snapshot_date, deal_id, stage, amount, close_probability, expected_close_date, health)
HAND_SNAPSHOTS = [
    # as of 10 Feb: due in 2 days, month 0 (Feb): weighted 5,600
    (SNAPSHOT_DAY, "h-late30", "negotiation", "8000.00", "70.00", date(2026, 2, 12), "critical"),
    # 30 days overdue on 10 Feb (11 Jan -> 10 Feb): p 0.5 -> 0.25, weighted 500
    (SNAPSHOT_DAY, "h-late60", "proposal", "2000.00", "50.00", date(2026, 1, 11), "warning"),
    # month 1 (Mar): weighted 400
    (SNAPSHOT_DAY, "h-today", "proposal", "1000.00", "40.00", date(2026, 3, 14), "healthy"),
    # another day's snapshot: not read for 10 Feb
    (date(2026, 2, 9), "h-other", "proposal", "50000.00", "90.00", date(2026, 2, 20), None),
    # a snapshot of the data's date itself: on that day the current deals are read instead
    (TODAY, "h-ghost", "proposal", "77777.00", "90.00", date(2026, 3, 20), None),
]

INSERT_SNAPSHOT = """
INSERT INTO deal_snapshots (snapshot_date, deal_id, taken_at, stage, amount, close_probability,
                            expected_close_date, health_category, currency, interactions,
                            objections_handled, has_champion, budget_confirmed,
                            decision_maker_engaged, competitors, close_date_pushes, created_at,
                            stage_entered_at)
VALUES ($1, $2, $3::timestamptz, $4, $5::numeric, $6::numeric, $7, $8, 'USD', 0, 0, false,
        false, false, 0, 0, $3::timestamptz - interval '40 days',
        $3::timestamptz - interval '10 days')
"""


@pytest.fixture(scope="module")
async def hand_url(services) -> AsyncIterator[str]:
    async with fresh_database(services.database_url, "revintel_fc") as url:
        conn = await asyncpg.connect(url)
        try:
            await insert_deals(conn, HAND_DEALS)
            await conn.executemany(
                INSERT_SNAPSHOT,
                [
                    (day, deal_id, datetime.combine(day, TAKEN_AT.timetz()), *rest)
                    for day, deal_id, *rest in HAND_SNAPSHOTS
                ],
            )
        finally:
            await conn.close()
        yield url


@pytest.fixture(scope="module")
async def hand_pool(hand_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(hand_url, min_size=1, max_size=2)
    yield p
    await p.close()


MONTH_FIELDS = ("month", "deal_count", "pipeline", "weighted", "p10", "p50", "p90",
                "expected_wins")  # fmt: skip
LINE_FIELDS = ("deal_count", "pipeline", "weighted", "p10", "p50", "p90", "expected_wins")


def figures(m, names=MONTH_FIELDS) -> tuple:
    return tuple(getattr(m, n) for n in names)


def month_figures(m) -> tuple:
    return (m.month, figures(m, MONTH_FIELDS[1:]))


def approx_rows(rows: list[tuple]) -> list:
    """(month, *numbers) rows: the month exactly, the numbers to 1e-12 relative."""
    return [(r[0], pytest.approx(r[1:], rel=1e-12, abs=1e-9)) for r in rows]


# as of today (14 Mar), 2 months:
TODAY_MONTHS = [
    # h-today, p = 1: every quantile is its value
    (date(2026, 3, 1), 1, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1.0),
    # h-april: won value 0 (p 0.75) or 4,000 (p 0.25)
    (date(2026, 4, 1), 1, 4000.0, 1000.0, 0.0, 0.0, 4000.0, 0.25),
]
# h-late30 (10,000 at 0.4) and h-late60 (2,000 at 0.125): won value 0 (p 0.6 x 0.875 = 0.525),
# 2,000 (0.075), 10,000 (0.35), 12,000 (0.05): cumulative 0.525, 0.6, 0.95, 1
TODAY_OVERDUE = (2, 12000.0, 4250.0, 0.0, 0.0, 10000.0, 0.525)


async def test_the_overdue_line_decays_and_is_stored_with_the_run(hand_pool):
    f = await run_forecast(hand_pool, as_of=None, kind="manual", months=2, framework_version=FW)
    assert (f.as_of, f.as_of_source, f.generated_from) == (TODAY, "data", NOW)
    assert [month_figures(m) for m in f.months] == approx_rows(TODAY_MONTHS)
    assert [m.method for m in f.months] == ["deterministic", "exact"]
    assert figures(f.overdue, LINE_FIELDS) == pytest.approx(TODAY_OVERDUE, rel=1e-12, abs=1e-9)
    assert (f.overdue.method, f.overdue.half_life_days, f.overdue.median_days_overdue) == (
        "exact",
        30,
        45,  # median of 30 and 60 days
    )
    assert f.coverage.model_dump() == {
        "open_deals": 5,
        "included": 2,
        "no_close_date": 1,
        "overdue_folded": 0,
        "overdue": 2,
        "beyond_horizon": 0,
        "no_amount": 0,
        "no_probability": 0,
    }
    # the months' sums; the overdue line is not in the totals
    assert figures(f.totals, ("deal_count", "pipeline", "weighted", "expected_wins")) == (
        pytest.approx((2, 5000.0, 2000.0, 1.25), rel=1e-12)
    )

    run = await hand_pool.fetchrow("SELECT * FROM forecast_runs WHERE run_id = $1", f.run_id)
    assert (run["status"], run["deal_count"]) == ("completed", 5)
    stored = tuple(run[f"overdue_{n}"] for n in ("deals", *LINE_FIELDS[1:]))
    assert stored == pytest.approx(
        (2, Decimal(12000), Decimal(4250), 0, 0, Decimal(10000), Decimal("0.525")),
        rel=Decimal("1e-12"),
    )
    snaps = await hand_pool.fetch(
        "SELECT month, deal_count, pipeline, weighted, p10, p50, p90, expected_wins "
        "FROM forecast_snapshots WHERE run_id = $1 ORDER BY month",
        f.run_id,
    )
    assert [(s[0], tuple(float(x) for x in tuple(s)[1:])) for s in snaps] == approx_rows(
        TODAY_MONTHS
    )

    # the dashboard reads the run back, overdue line included
    data = await load_dashboard(hand_pool)
    assert (data.forecast_source, data.forecast_run_id) == ("snapshot", f.run_id)
    assert [month_figures(m) for m in data.forecast] == approx_rows(TODAY_MONTHS)
    assert figures(data.overdue, LINE_FIELDS) == pytest.approx(TODAY_OVERDUE, rel=1e-12)
    # today's deals, not the snapshot taken today (h-ghost)
    assert (data.kpis.open_deals, data.kpis.open_pipeline) == (5, Decimal("17500.00"))


# as of 10 Feb from that day's snapshot, 2 months:
PAST_MONTHS = [
    # h-late30: won value 0 (p 0.3) or 8,000 (p 0.7)
    (date(2026, 2, 1), 1, 8000.0, 5600.0, 0.0, 8000.0, 8000.0, 0.7),
    # h-today: 0 (p 0.6) or 1,000 (p 0.4)
    (date(2026, 3, 1), 1, 1000.0, 400.0, 0.0, 0.0, 1000.0, 0.4),
]
# h-late60, 30 days overdue: 0 (p 0.75) or 2,000 (p 0.25)
PAST_OVERDUE = (1, 2000.0, 500.0, 0.0, 0.0, 2000.0, 0.25)


async def test_a_past_as_of_reads_that_days_snapshot(hand_pool):
    before = await run_ids(hand_pool)
    # no run stored for that day yet: the dashboard computes it from the snapshot
    data = await load_dashboard(hand_pool, SNAPSHOT_DAY, months=2)
    assert (data.as_of, data.as_of_source, data.forecast_source) == (
        SNAPSHOT_DAY,
        "explicit",
        "computed",
    )
    assert [month_figures(m) for m in data.forecast] == approx_rows(PAST_MONTHS)
    assert figures(data.overdue, LINE_FIELDS) == pytest.approx(PAST_OVERDUE, rel=1e-12)
    k = data.kpis
    assert (k.open_deals, k.open_pipeline, k.at_risk) == (3, Decimal("11000.00"), 1)
    assert float(k.avg_deal_size) == pytest.approx(11000 / 3, rel=1e-12)
    assert k.weighted_90d == Decimal(5600 + 1000 + 400)  # undecayed, overdue included
    assert [(s.stage, s.deal_count, s.total_value, s.weighted_value) for s in data.stages] == [
        ("proposal", 2, Decimal("3000.00"), Decimal(1400)),
        ("negotiation", 1, Decimal("8000.00"), Decimal(5600)),
    ]
    assert all(s.avg_days_in_stage == pytest.approx(10.0) for s in data.stages)
    assert await run_ids(hand_pool) == before  # the dashboard stores nothing

    f = await run_forecast(hand_pool, as_of=SNAPSHOT_DAY, kind="manual", months=2,
                           framework_version=FW)  # fmt: skip
    assert (f.as_of, f.as_of_source, f.generated_from) == (SNAPSHOT_DAY, "explicit", TAKEN_AT)
    assert [month_figures(m) for m in f.months] == approx_rows(PAST_MONTHS)
    assert figures(f.overdue, LINE_FIELDS) == pytest.approx(PAST_OVERDUE, rel=1e-12)
    assert f.overdue.median_days_overdue == 30
    assert (f.coverage.open_deals, f.coverage.included, f.coverage.overdue) == (3, 2, 1)
    run = await new_run(hand_pool, before)
    assert (run["run_id"], run["as_of"], run["deal_count"], run["overdue_deals"]) == (
        f.run_id,
        SNAPSHOT_DAY,
        3,
        1,
    )
    assert run["overdue_weighted"] == Decimal(500)

    # now the dashboard of that day reads the stored run
    again = await load_dashboard(hand_pool, SNAPSHOT_DAY, months=2)
    assert (again.forecast_source, again.forecast_run_id) == ("snapshot", f.run_id)
    assert [month_figures(m) for m in again.forecast] == approx_rows(PAST_MONTHS)
    assert figures(again.overdue, LINE_FIELDS) == pytest.approx(PAST_OVERDUE, rel=1e-12)


async def test_a_past_as_of_without_a_snapshot_is_refused(hand_pool, hand_url):
    before = await run_ids(hand_pool)
    refusal = "no daily snapshot of the pipeline on that day"
    with pytest.raises(ForecastUnavailable, match=refusal):
        await run_forecast(hand_pool, as_of=NO_SNAPSHOT_DAY, kind="manual",
                           framework_version=FW)  # fmt: skip
    with pytest.raises(ForecastUnavailable, match=refusal):
        await load_dashboard(hand_pool, NO_SNAPSHOT_DAY)
    assert await run_ids(hand_pool) == before  # no run stored, not even a failed one
    for command in ("forecast", "dashboard"):
        result = await asyncio.to_thread(
            invoke, hand_url, command, "--as-of", NO_SNAPSHOT_DAY.isoformat()
        )
        assert result.exit_code == 2, result.output
        assert refusal in result.output
        assert "2026-02-11 is before the data's date 2026-03-14" in result.output
    assert await run_ids(hand_pool) == before
