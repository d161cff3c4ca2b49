"""sql/004_read_models.sql against real PostgreSQL: every view returns what its rows imply.

The views aggregate the whole deals table, so this module migrates a database of its own (the
session database is shared with the worker tests) and computes every expectation in Python from
the rows it inserted. Its connections use a non-UTC session time zone on purpose: the read
models must not depend on it.
"""

from __future__ import annotations

import calendar
import json
import math
import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.services import fresh_database
from worker.forecast.runs import compute_months
from worker.store.migrations import discover

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)  # the newest event in the data set
TODAY = NOW.date()
OPEN = ("prospecting", "qualification", "proposal", "negotiation")
POSITION = {s: i for i, s in enumerate((*OPEN, "closed_won", "closed_lost"), start=1)}
VIEWS = (
    "revenue_pipeline_summary",
    "revenue_forecast_monthly",
    "at_risk_deals",
    "won_deals_summary",
    "deal_velocity_by_stage",
    "stage_conversion_rates",
    "slipped_deals",
    "forecast_trend_mom",
    "forecast_trend_yoy",
)


@dataclass
class Deal:
    deal_id: str
    stage: str
    amount: Decimal | None
    close_probability: Decimal | None
    expected_close_date: date | None
    health_score: int | None
    health_category: str | None
    risk_factors: list[str]
    close_date_pushes: int
    created_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    last_event_time: datetime
    history: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN


def make_deals(rng: random.Random, n: int = 260) -> list[Deal]:
    deals = []
    for i in range(n):
        stage = rng.choice((*OPEN, *OPEN, "closed_won", "closed_won", "closed_lost"))
        created = NOW - timedelta(days=rng.uniform(30, 500), seconds=rng.randrange(86_400))
        last = min(NOW - timedelta(minutes=1), created + timedelta(days=rng.uniform(1, 400)))
        entered = created + (last - created) * rng.random()
        closed = stage not in OPEN and rng.random() > 0.1
        score = None if rng.random() < 0.06 else rng.randint(0, 100)
        category = None
        if score is not None:
            category = "healthy" if score >= 70 else "warning" if score >= 40 else "critical"
        deals.append(
            Deal(
                deal_id=f"rm-{i:04d}",
                stage=stage,
                amount=None if rng.random() < 0.05 else Decimal(f"{rng.uniform(300, 90_000):.2f}"),
                close_probability=None
                if rng.random() < 0.05
                else Decimal(f"{rng.uniform(0, 100):.2f}"),
                expected_close_date=None
                if rng.random() < 0.08
                else TODAY + timedelta(days=rng.randint(-150, 240)),
                health_score=score,
                health_category=category,
                risk_factors=rng.sample(["no_champion", "stalled", "competitor", "pushed"], 2),
                close_date_pushes=rng.choice((0, 0, 0, 1, 2)),
                created_at=created,
                stage_entered_at=entered,
                closed_at=last if closed else None,
                last_event_time=last,
            )
        )
    deals[0].last_event_time = NOW  # the data's now
    # edge cases: a win closed at 23:30 New York time on 31 January is a February win (UTC)
    deals[1].stage, deals[1].closed_at = "closed_won", datetime(2026, 2, 1, 4, 30, tzinfo=UTC)
    deals[1].created_at = datetime(2025, 11, 1, tzinfo=UTC)
    deals[1].stage_entered_at = deals[1].last_event_time = deals[1].closed_at
    # due today (not overdue), due yesterday (overdue), never pushed
    for d, due in ((deals[2], TODAY), (deals[3], TODAY - timedelta(days=1))):
        d.stage, d.expected_close_date, d.close_date_pushes = "proposal", due, 0
    # exactly at the alert threshold: at risk
    deals[5].stage, deals[5].amount = "qualification", Decimal("5000.00")
    deals[5].health_score, deals[5].health_category = 55, "warning"
    # entered its stage after the as-of used in one test: its age is clamped at 0
    deals[4].stage, deals[4].stage_entered_at = "negotiation", NOW - timedelta(hours=1)
    for d in deals:
        d.history = make_history(rng, d)
    return deals


def make_history(rng: random.Random, d: Deal) -> list[tuple[str, datetime, datetime | None]]:
    """Stints from created_at: forwards (sometimes skipping, sometimes back), ending in the
    deal's stage; some deals have none."""
    if rng.random() < 0.1:
        return []
    target = POSITION[d.stage]
    path, pos = ["prospecting"], 1
    while True:
        if d.stage in OPEN and pos == target and rng.random() < 0.7:
            break
        if d.stage not in OPEN and (pos >= 2 or d.stage == "closed_lost") and rng.random() < 0.3:
            path.append(d.stage)
            break
        if pos > 1 and rng.random() < 0.12:
            pos -= 1  # moved back
        elif pos < 4:
            pos += rng.choice((1, 1, 2)) if pos < 3 else 1
        elif d.stage not in OPEN:
            path.append(d.stage)
            break
        else:
            pos = target
        path.append(OPEN[pos - 1])
        if d.stage in OPEN and pos == target and rng.random() < 0.5:
            break
    if d.stage in OPEN and path[-1] != d.stage:
        path.append(d.stage)
    times, t = [], d.created_at
    for _ in path:
        times.append(t)
        t += timedelta(days=rng.uniform(0.5, 40), seconds=rng.randrange(3600))
    stints = []
    for k, (stage, start) in enumerate(zip(path, times, strict=True)):
        end = times[k + 1] if k + 1 < len(path) else None
        stints.append((stage, start, end))
    return stints


INSERT_DEAL = """
INSERT INTO deals (deal_id, stage, amount, close_probability, expected_close_date, health_score,
                   health_category, risk_factors, close_date_pushes, created_at, stage_entered_at,
                   closed_at, last_event_id, last_event_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14)
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
                d.health_score,
                d.health_category,
                json.dumps(d.risk_factors),
                d.close_date_pushes,
                d.created_at,
                d.stage_entered_at,
                d.closed_at,
                f"{d.deal_id}-e",
                d.last_event_time,
            )
            for d in deals
        ],
    )
    await conn.executemany(
        "INSERT INTO deal_stage_history (deal_id, stage, entered_at, left_at) "
        "VALUES ($1, $2, $3, $4)",
        [(d.deal_id, *stint) for d in deals for stint in d.history],
    )


@asynccontextmanager
async def rolled_back(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is always rolled back."""
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            yield conn
        finally:
            await tr.rollback()


@pytest.fixture(scope="module")
async def rm_url(services) -> AsyncIterator[str]:
    """A database of this module's own, migrated, dropped afterwards."""
    async with fresh_database(services.database_url, "revintel_rm") as url:
        yield url


@pytest.fixture(scope="module")
async def deals(rm_url: str) -> list[Deal]:
    data = make_deals(random.Random(20260314))
    conn = await asyncpg.connect(rm_url)
    try:
        await insert_deals(conn, data)
    finally:
        await conn.close()
    return data


@pytest.fixture(scope="module")
async def rm(rm_url: str, deals) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        rm_url, min_size=1, max_size=2, server_settings={"TimeZone": "America/New_York"}
    )
    yield pool
    await pool.close()


def days(delta: timedelta) -> float:
    return delta.total_seconds() / 86_400


def month_of(d: date) -> date:
    return d.replace(day=1)


def weighted(d: Deal) -> Decimal:
    if d.amount is None or d.close_probability is None:
        return Decimal(0)
    return d.amount * d.close_probability / 100


def same(actual, expected, places: int | None = None) -> bool:
    """Equal as numbers to 1e-9 relative (numeric division vs Decimal), or both NULL; with
    ``places``, ``actual`` is ``expected`` rounded to that many places (a view's rounding)."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if places is not None:
        return abs(float(actual) - float(expected)) <= 0.5 * 10**-places + 1e-9
    return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def minus_months(d: date, n: int) -> date:
    """PostgreSQL's date - interval 'n months' (day clamped to the month's end)."""
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


# --- the data's now -----------------------------------------------------------------------


async def test_the_data_sets_the_clock(rm, deals):
    assert await rm.fetchval("SELECT data_as_of()") == NOW
    assert await rm.fetchval("SELECT data_as_of_date()") == TODAY
    async with rolled_back(rm) as conn:
        later = NOW + timedelta(days=10)
        await conn.execute(
            "UPDATE deals SET last_event_time = $1 WHERE deal_id = $2", later, deals[7].deal_id
        )
        assert await conn.fetchval("SELECT DISTINCT as_of FROM revenue_pipeline_summary") == later
        assert await conn.fetchval("SELECT DISTINCT as_of FROM slipped_deals") == later.date()


# --- revenue_pipeline_summary -------------------------------------------------------------


def expected_pipeline(deals: list[Deal], as_of: datetime) -> list[tuple]:
    rows = []
    for stage in OPEN:
        mine = [d for d in deals if d.stage == stage]
        amounts = [d.amount for d in mine if d.amount is not None]
        ages = [max(days(as_of - d.stage_entered_at), 0) for d in mine]
        rows.append(
            (
                stage,
                POSITION[stage],
                len(mine),
                sum(amounts, Decimal(0)),
                sum((weighted(d) for d in mine), Decimal(0)),
                sum(amounts) / len(amounts) if amounts else None,
                statistics.fmean(ages) if ages else None,
            )
        )
    return rows


def assert_pipeline(rows, expected, rounded: bool = False):
    """``rounded``: the view's figures (money to cents, days to 2 places), else exact."""
    cents, days_places = (2, 2) if rounded else (None, None)
    assert [r["stage"] for r in rows] == list(OPEN)
    for r, e in zip(rows, expected, strict=True):
        stage, pos, count, total, weighted_value, avg_size, avg_days = e
        assert (r["stage_position"], r["deal_count"]) == (pos, count), stage
        assert r["total_value"] == total
        assert same(r["weighted_value"], weighted_value, cents)
        assert same(r["avg_deal_size"], avg_size, cents)
        assert same(r["avg_days_in_stage"], avg_days, days_places)


async def test_pipeline_summary(rm, deals):
    rows = await rm.fetch("SELECT * FROM revenue_pipeline_summary")
    assert {r["as_of"] for r in rows} == {NOW}
    assert_pipeline(rows, expected_pipeline(deals, NOW), rounded=True)


async def test_pipeline_summary_at_an_explicit_as_of(rm, deals):
    as_of = NOW - timedelta(days=3)  # deals[4] entered its stage later: age 0, not negative
    rows = await rm.fetch("SELECT * FROM pipeline_summary($1)", as_of)
    assert_pipeline(rows, expected_pipeline(deals, as_of))


# --- revenue_forecast_monthly -------------------------------------------------------------


HALF_LIFE_DAYS = 30  # framework_param('overdue_half_life_days') as migrated


def expected_forecast(
    deals: list[Deal], as_of: date, half_life: float = HALF_LIFE_DAYS
) -> dict[tuple[str, date | None], dict]:
    """The rows of forecast_monthly(as_of), keyed (line, month), in their order: one 'overdue'
    row (month NULL) for the open deals due before as_of (by day), each weighted value decayed
    by 0.5 ** (days overdue / half_life), first; then one 'month' row per calendar month of
    the deals due from as_of on (no folding)."""
    out: dict[tuple[str, date | None], dict] = defaultdict(
        lambda: {"n": 0, "pipeline": Decimal(0), "weighted": Decimal(0)}
    )
    for d in deals:
        if not d.is_open or d.expected_close_date is None:
            continue
        late = (as_of - d.expected_close_date).days
        if late > 0:
            e = out["overdue", None]
            e["weighted"] += weighted(d) * Decimal(0.5 ** (late / half_life))
        else:
            e = out["month", month_of(d.expected_close_date)]
            e["weighted"] += weighted(d)
        e["n"] += 1
        e["pipeline"] += d.amount or 0
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0] == "month", kv[0][1] or date.min)))


def assert_forecast_rows(rows, expected, rounded: bool = False) -> None:
    """``rounded``: the view's figures (money to cents), else the function's, exact."""
    assert [(r["line"], r["month"]) for r in rows] == list(expected)
    for r in rows:
        e = expected[r["line"], r["month"]]
        assert r["deal_count"] == e["n"]
        assert r["pipeline"] == e["pipeline"]
        assert same(r["weighted_forecast"], e["weighted"], 2 if rounded else None), (
            r["line"],
            r["month"],
        )


async def test_forecast_monthly(rm, deals):
    assert await columns(rm, "revenue_forecast_monthly") == [
        ("as_of", "date"),
        ("line", "text"),
        ("month", "date"),
        ("deal_count", "int8"),
        ("pipeline", "numeric"),
        ("weighted_forecast", "numeric"),
    ]
    assert await rm.fetchval("SELECT framework_param('overdue_half_life_days')") == 30
    rows = await rm.fetch("SELECT * FROM revenue_forecast_monthly")
    assert {r["as_of"] for r in rows} == {TODAY}
    expected = expected_forecast(deals, TODAY)
    assert_forecast_rows(rows, expected, rounded=True)
    # the overdue line first (deals[3], due yesterday, in it), then the months from March on
    # (deals[2], due today, in March): no month before the as-of month
    assert (rows[0]["line"], rows[0]["month"]) == ("overdue", None)
    assert rows[0]["deal_count"] > 0
    assert rows[1]["month"] == date(2026, 3, 1)
    assert all(r["line"] == "month" for r in rows[1:])
    # decayed: less than the plain weighted value of the same deals
    late = [
        d for d in deals if d.is_open and d.expected_close_date and d.expected_close_date < TODAY
    ]
    assert rows[0]["deal_count"] == len(late)
    assert rows[0]["weighted_forecast"] < sum((weighted(d) for d in late), Decimal(0))


async def test_forecast_monthly_overdue_half_life_is_a_framework_param(rm, deals):
    async with rolled_back(rm) as conn:
        await conn.execute(
            "UPDATE framework_params SET value = 10 WHERE key = 'overdue_half_life_days'"
        )
        rows = await conn.fetch("SELECT * FROM revenue_forecast_monthly")
    assert_forecast_rows(rows, expected_forecast(deals, TODAY, half_life=10), rounded=True)


async def test_forecast_monthly_at_an_explicit_as_of(rm, deals):
    as_of = date(2026, 6, 10)
    rows = await rm.fetch("SELECT * FROM forecast_monthly($1)", as_of)
    expected = expected_forecast(deals, as_of)
    assert_forecast_rows(rows, expected)
    # overdue by day: deals due 1 to 9 June are in the overdue line, not in June
    june_late = [
        d
        for d in deals
        if d.is_open and d.expected_close_date and date(2026, 6, 1) <= d.expected_close_date < as_of
    ]
    assert june_late
    june = [r for r in rows if r["month"] == date(2026, 6, 1)]
    assert [r["deal_count"] for r in june] == [
        sum(
            1
            for d in deals
            if d.is_open
            and d.expected_close_date
            and as_of <= d.expected_close_date < date(2026, 7, 1)
        )
    ]


async def test_python_forecast_agrees_with_the_view(rm, deals):
    """The forecast runs' maths (worker/forecast/runs.py ``compute_months``) over the open deals
    give the view's counts and sums, month by month and for the overdue line (same split by
    day, same decay, same treatment of missing amounts and probabilities)."""
    rows = await rm.fetch(
        "SELECT amount, close_probability, expected_close_date FROM deals "
        "WHERE stage NOT IN ('closed_won', 'closed_lost')"
    )
    months, coverage, overdue = compute_months(rows, TODAY, 6)
    # the function behind the view: full precision (the view rounds to cents)
    view = {
        (r["line"], r["month"]): r
        for r in await rm.fetch("SELECT * FROM forecast_monthly($1)", TODAY)
    }
    for f in months:
        r = view.get(("month", f.month))
        assert f.deal_count == (r["deal_count"] if r else 0)
        assert f.pipeline == pytest.approx(float(r["pipeline"]) if r else 0, rel=1e-12)
        assert f.weighted == pytest.approx(float(r["weighted_forecast"]) if r else 0, rel=1e-12)
        assert 0 <= f.p10 <= f.p50 <= f.p90 <= f.pipeline
    r = view["overdue", None]
    assert overdue.deal_count == coverage.overdue == r["deal_count"]
    assert overdue.pipeline == pytest.approx(float(r["pipeline"]), rel=1e-12)
    assert overdue.weighted == pytest.approx(float(r["weighted_forecast"]), rel=1e-9)
    assert 0 <= overdue.p10 <= overdue.p50 <= overdue.p90 <= overdue.pipeline


# --- at_risk_deals ------------------------------------------------------------------------


def expected_at_risk(deals: list[Deal], threshold: Decimal) -> list[str]:
    risky = [
        d
        for d in deals
        if d.is_open
        and d.health_category in ("warning", "critical")
        and d.amount is not None
        and d.amount >= threshold
    ]
    return [d.deal_id for d in sorted(risky, key=lambda d: (-d.amount, d.deal_id))]


async def test_at_risk_deals_use_the_configured_threshold(rm, deals):
    by_id = {d.deal_id: d for d in deals}
    rows = await rm.fetch("SELECT * FROM at_risk_deals")
    assert [r["deal_id"] for r in rows] == expected_at_risk(deals, Decimal(5000))
    assert rows[-1]["deal_id"] == deals[5].deal_id  # at the threshold counts
    for r in rows:
        d = by_id[r["deal_id"]]
        assert (r["amount"], r["health_score"], r["health_category"]) == (
            d.amount,
            d.health_score,
            d.health_category,
        )
        assert json.loads(r["risk_factors"]) == d.risk_factors
    async with rolled_back(rm) as conn:
        await conn.execute(
            "UPDATE framework_params SET value = 40000 WHERE key = 'alert_value_threshold'"
        )
        rows = await conn.fetch("SELECT deal_id FROM at_risk_deals")
        assert [r["deal_id"] for r in rows] == expected_at_risk(deals, Decimal(40000))
        assert 0 < len(rows) < len(expected_at_risk(deals, Decimal(5000)))
        await conn.execute("DELETE FROM framework_params WHERE key = 'alert_value_threshold'")
        with pytest.raises(asyncpg.PostgresError, match="alert_value_threshold"):
            await conn.fetch("SELECT * FROM at_risk_deals")
    assert await rm.fetchval("SELECT framework_param('alert_value_threshold')") == 5000


# --- won_deals_summary --------------------------------------------------------------------


async def test_won_deals_summary(rm, deals):
    groups: dict[date, list[Deal]] = defaultdict(list)
    for d in deals:
        if d.stage == "closed_won" and d.closed_at is not None:
            groups[month_of(d.closed_at.astimezone(UTC).date())].append(d)
    rows = await rm.fetch("SELECT * FROM won_deals_summary")
    assert [r["month"] for r in rows] == sorted(groups)
    assert deals[1] in groups[date(2026, 2, 1)]  # UTC month, whatever the session time zone
    for r in rows:
        won = groups[r["month"]]
        amounts = [d.amount for d in won if d.amount is not None]
        assert r["deal_count"] == len(won)
        assert r["total_value"] == sum(amounts, Decimal(0))
        assert same(r["avg_deal_size"], sum(amounts) / len(amounts), 2)
        assert same(
            r["avg_cycle_days"], statistics.fmean(days(d.closed_at - d.created_at) for d in won), 2
        )


# --- slipped_deals ------------------------------------------------------------------------


def expected_slipped(deals: list[Deal], as_of: date) -> list[tuple]:
    rows = []
    for d in deals:
        overdue = d.expected_close_date is not None and d.expected_close_date < as_of
        if d.is_open and (overdue or d.close_date_pushes > 0):
            late = (
                None
                if d.expected_close_date is None
                else max((as_of - d.expected_close_date).days, 0)
            )
            rows.append((d.deal_id, overdue, late, d.close_date_pushes > 0, d.amount))
    rows.sort(key=lambda r: (r[2] is None, -(r[2] or 0), r[4] is None, -(r[4] or 0), r[0]))
    return [r[:4] for r in rows]


async def test_slipped_deals(rm, deals):
    rows = await rm.fetch("SELECT * FROM slipped_deals")
    got = [(r["deal_id"], r["overdue"], r["days_overdue"], r["pushed"]) for r in rows]
    assert got == expected_slipped(deals, TODAY)
    ids = {r[0] for r in got}
    assert deals[3].deal_id in ids and deals[2].deal_id not in ids  # yesterday vs today
    assert {r["as_of"] for r in rows} == {TODAY}


async def test_slipped_deals_at_an_explicit_as_of(rm, deals):
    as_of = date(2026, 1, 1)
    rows = await rm.fetch("SELECT * FROM slipped_deals_as_of($1)", as_of)
    got = [(r["deal_id"], r["overdue"], r["days_overdue"], r["pushed"]) for r in rows]
    assert got == expected_slipped(deals, as_of)


# --- stage history: velocity and conversion -----------------------------------------------


async def test_deal_velocity_by_stage(rm, deals):
    rows = await rm.fetch("SELECT * FROM deal_velocity_by_stage")
    assert [r["stage"] for r in rows] == list(OPEN)
    for r in rows:
        stints = [s for d in deals for s in d.history if s[0] == r["stage"]]
        done = [days(end - start) for _, start, end in stints if end is not None]
        assert r["completed_stints"] == len(done) > 0
        assert r["open_stints"] == len(stints) - len(done)
        assert same(r["avg_days"], statistics.fmean(done), 2)
        assert same(r["median_days"], statistics.median(done), 2)


async def test_stage_conversion_rates(rm, deals):
    rows = await rm.fetch("SELECT * FROM stage_conversion_rates")
    assert [(r["stage"], r["next_stage"]) for r in rows] == list(
        zip(OPEN, (*OPEN[1:], "closed_won"), strict=True)
    )
    for r in rows:
        pos = POSITION[r["stage"]]
        entered = advanced = won = lost = 0
        for d in deals:
            firsts = [t for s, t, _ in d.history if s == r["stage"]]
            if not firsts:
                continue
            first = min(firsts)
            entered += 1
            later = [(s, t) for s, t, _ in d.history if t > first]
            advanced += any(pos < POSITION[s] <= 5 for s, _ in later)
            won += any(s == "closed_won" for s, _ in later)
            lost += any(s == "closed_lost" for s, _ in later)
        assert (r["entered"], r["advanced"], r["won"], r["lost"]) == (entered, advanced, won, lost)
        assert entered > 0 and 0 < advanced < entered
        assert same(r["advance_rate"], advanced / entered, 4)
        assert same(r["win_rate"], won / entered, 4)
        assert same(r["loss_rate"], lost / entered, 4)


async def test_stage_history_allows_one_open_stint_per_deal(rm):
    async with rolled_back(rm) as conn:
        await conn.execute(
            "INSERT INTO deal_stage_history VALUES ('h-1', 'prospecting', $1, NULL)", NOW
        )
        with pytest.raises(asyncpg.UniqueViolationError, match='"deal_stage_history_open_idx"'):
            await conn.execute(
                "INSERT INTO deal_stage_history VALUES ('h-1', 'proposal', $1, NULL)",
                NOW + timedelta(days=1),
            )


# --- forecast snapshots and trends --------------------------------------------------------


@dataclass
class Run:
    run_id: uuid.UUID
    as_of: date
    status: str
    started_at: datetime
    months: dict[date, dict]


def make_runs(rng: random.Random) -> list[Run]:
    plan = [  # as_of, status, minutes after the as_of's midnight
        (date(2025, 2, 10), "completed", 60),
        (date(2025, 3, 20), "completed", 60),
        (date(2026, 1, 20), "completed", 60),
        (date(2026, 2, 10), "completed", 60),
        (date(2026, 2, 14), "completed", 60),
        (date(2026, 2, 25), "failed", 60),  # ignored
        (date(2026, 3, 10), "completed", 60),
        (date(2026, 3, 10), "completed", 90),  # same as_of, started later: the latest
        (date(2026, 3, 31), "completed", 60),
        (date(2026, 4, 1), "running", 60),  # ignored
    ]
    runs = []
    for as_of, status, minutes in plan:
        started = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
        months = {}
        for k in range(6):
            y, m = divmod(as_of.year * 12 + as_of.month - 1 + k, 12)
            qs = sorted(Decimal(rng.randrange(1, 10**7)) / 100 for _ in range(3))
            months[date(y, m + 1, 1)] = {
                "deal_count": rng.randrange(0, 50),
                "pipeline": Decimal(rng.randrange(10**7, 10**8)) / 100,
                "weighted": Decimal(rng.randrange(10**6, 10**7)) / 100,
                "p10": qs[0],
                "p50": qs[1],
                "p90": qs[2],
                "expected_wins": Decimal(rng.randrange(0, 5000)) / 100,
            }
        months[date(as_of.year, as_of.month, 1)]["pipeline"] = Decimal(0)  # change_pct NULL
        runs.append(
            Run(
                uuid.UUID(int=rng.getrandbits(128)),
                as_of,
                status,
                started + timedelta(minutes=minutes),
                months,
            )
        )
    return runs


async def insert_runs(conn: asyncpg.Connection, runs: list[Run]) -> None:
    for r in runs:
        done = r.status != "running"
        await conn.execute(
            "INSERT INTO forecast_runs (run_id, as_of, kind, status, horizon_months, started_at,"
            " finished_at, duration_ms) VALUES ($1, $2, 'daily', $3, 6, $4, $5, $6)",
            r.run_id,
            r.as_of,
            r.status,
            r.started_at,
            r.started_at + timedelta(seconds=2) if done else None,
            2000 if done else None,
        )
        await conn.executemany(
            "INSERT INTO forecast_snapshots (run_id, as_of, month, deal_count, pipeline, weighted,"
            " p10, p50, p90, expected_wins) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                (
                    r.run_id,
                    r.as_of,
                    m,
                    f["deal_count"],
                    f["pipeline"],
                    f["weighted"],
                    f["p10"],
                    f["p50"],
                    f["p90"],
                    f["expected_wins"],
                )
                for m, f in r.months.items()
            ],
        )


def expected_trend(runs: list[Run], lag_months: int, shift_months: int) -> dict[date, tuple]:
    done = [r for r in runs if r.status == "completed"]
    out = {}
    for month in sorted({m for r in done for m in r.months}):
        current = max((r for r in done if month in r.months), key=lambda r: (r.as_of, r.started_at))
        cutoff = minus_months(current.as_of, lag_months)
        prior_month = minus_months(month, shift_months)
        priors = [r for r in done if prior_month in r.months and r.as_of <= cutoff]
        prior = max(priors, key=lambda r: (r.as_of, r.started_at)) if priors else None
        out[month] = (current, prior, prior_month)
    return out


FIGURES = ("deal_count", "pipeline", "weighted", "p10", "p50", "p90", "expected_wins")


@pytest.mark.parametrize(
    ("view", "lag", "shift"), [("forecast_trend_mom", 1, 0), ("forecast_trend_yoy", 12, 12)]
)
async def test_forecast_trends(rm, view, lag, shift):
    runs = make_runs(random.Random(7))
    async with rolled_back(rm) as conn:
        await insert_runs(conn, runs)
        rows = await conn.fetch(f"SELECT * FROM {view}")
    expected = expected_trend(runs, lag, shift)
    assert [r["month"] for r in rows] == list(expected)
    with_prior = 0
    for r in rows:
        current, prior, prior_month = expected[r["month"]]
        assert (r["run_id"], r["as_of"]) == (current.run_id, current.as_of)
        assert r["prior_run_id"] == (prior.run_id if prior else None)
        for name in FIGURES:
            now_value = current.months[r["month"]][name]
            assert r[name] == now_value
            if prior is None:
                assert r[f"prior_{name}"] is None and r[f"{name}_change"] is None
                continue
            before = prior.months[prior_month][name]
            assert r[f"prior_{name}"] == before
            assert r[f"{name}_change"] == now_value - before
            pct = r[f"{name}_change_pct"]
            if before == 0:
                assert pct is None
            else:
                assert same(pct, 100 * (now_value - before) / before, 4)
        if prior is not None:
            with_prior += 1
            assert r["prior_month"] == prior_month
    assert with_prior >= 2


# --- rounding -------------------------------------------------------------------------------

# Places a view prints, by column: money to cents, rates and percentages to 4, days to 2.
RATE_PLACES = 4
MONEY_PLACES = 2


def places_of(column: str) -> int:
    if column.endswith(("_pct", "_rate")) or "expected_wins" in column:
        return RATE_PLACES
    return MONEY_PLACES


def decimals(value) -> int:
    """Digits after the point a value prints with (a float through its shortest repr)."""
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return max(-exponent, 0)


async def test_views_print_money_to_cents_and_rates_to_4_places(rm):
    """No view prints a 20-digit decimal: every numeric column of every view, on data whose
    sums, products and quotients have many digits, has at most its places."""
    runs = make_runs(random.Random(11))
    for r in runs:  # forecast figures with many decimals, as the simulations store them
        for figures in r.months.values():
            for name in FIGURES[1:]:
                figures[name] += Decimal("0.123456789")
    async with rolled_back(rm) as conn:
        await insert_runs(conn, runs)
        for view in (*VIEWS, "pipeline_changes_last_week"):
            rows = await conn.fetch(f"SELECT * FROM {view}")
            assert rows, view
            for row in rows:
                for column, value in row.items():
                    if isinstance(value, Decimal | float):
                        assert decimals(value) <= places_of(column), (view, column, value)


# --- plans on a realistic volume -----------------------------------------------------------

BULK = """
SELECT setseed(0.42);
INSERT INTO deals (deal_id, stage, amount, expected_close_date, health_score, health_category,
                   close_probability, close_date_pushes, created_at, stage_entered_at,
                   closed_at, last_event_id, last_event_time)
SELECT 'bulk-' || g, st, round((exp(9.5 + random() * 2.5))::numeric, 2),
       date '2026-01-01' + (random() * 270)::int, hs,
       CASE WHEN hs >= 70 THEN 'healthy' WHEN hs >= 40 THEN 'warning' ELSE 'critical' END,
       round((random() * 100)::numeric, 2),
       CASE WHEN random() < 0.08 THEN 1 + (random() * 3)::int ELSE 0 END,
       ts - interval '90 days', ts - random() * interval '60 days',
       CASE WHEN st IN ('closed_won', 'closed_lost') THEN ts END, 'bulk-e' || g, ts
FROM (
    SELECT g,
           (ARRAY['prospecting', 'qualification', 'proposal', 'negotiation', 'closed_won',
                  'closed_lost'])[1 + floor(power(random(), 1.3) * 6)::int] AS st,
           greatest(0, 40 + random() * 60
                       - CASE WHEN random() < 0.3 THEN random() * 60 ELSE 0 END)::int AS hs,
           timestamptz '2026-03-01 00:00Z' - random() * interval '400 days' AS ts
    FROM generate_series(1, 50000) g
) x;
INSERT INTO forecast_runs (run_id, as_of, kind, status, started_at, finished_at)
SELECT md5('run' || g)::uuid, date '2023-01-01' + g, 'daily', 'completed',
       timestamptz '2023-01-01 02:00Z' + g * interval '1 day',
       timestamptz '2023-01-01 02:00Z' + g * interval '1 day' + interval '2 s'
FROM generate_series(0, 1150) g;
INSERT INTO forecast_snapshots (run_id, as_of, month, deal_count, pipeline, weighted, p10, p50,
                                p90, expected_wins)
SELECT r.run_id, r.as_of, (date_trunc('month', r.as_of::timestamp) + m * interval '1 month')::date,
       100, 1e6, 4e5, 3e5, 4e5, 5e5, 40
FROM forecast_runs r, generate_series(0, 5) m;
UPDATE framework_params SET value = 150000 WHERE key = 'alert_value_threshold';
ANALYZE deals;
ANALYZE forecast_runs;
ANALYZE forecast_snapshots;
"""


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", ()):
        nodes.extend(plan_nodes(child))
    return nodes


async def test_views_use_their_indexes_on_50k_deals(rm):
    """With 50,000 generated deals and 6,900 snapshots (rolled back afterwards), the selective
    read models are answered from their indexes, not by scanning the table."""
    async with rolled_back(rm) as conn:
        await conn.execute(BULK)

        async def indexes(sql: str) -> set[str]:
            doc = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}"))
            return {n["Index Name"] for n in plan_nodes(doc[0]["Plan"]) if "Index Name" in n}

        assert "deals_last_event_time_idx" in await indexes(
            "SELECT max(last_event_time) FROM deals"
        )
        assert "deals_open_health_idx" in await indexes("SELECT * FROM at_risk_deals")
        assert {"deals_open_close_date_idx", "deals_open_pushed_idx"} <= await indexes(
            "SELECT * FROM slipped_deals"
        )
        assert "deals_won_closed_idx" in await indexes("SELECT * FROM won_deals_summary")
        assert "forecast_snapshots_month_idx" in await indexes("SELECT * FROM forecast_trend_mom")


# --- the shared session database ----------------------------------------------------------


async def columns(pool: asyncpg.Pool, view: str) -> list[tuple[str, str]]:
    async with pool.acquire() as conn:
        statement = await conn.prepare(f"SELECT * FROM {view}")
        return [(a.name, a.type.name) for a in statement.get_attributes()]


async def test_read_models_exist_in_the_migrated_session_database(db, rm):
    """The session database (tests/services.py, shared with the worker tests) has every
    migration, and read models shaped like the ones checked above that answer for its rows."""
    applied = await db.fetch("SELECT version, name, checksum FROM schema_migrations")
    assert sorted(tuple(r) for r in applied) == [
        (m.version, m.name, m.checksum) for m in discover()
    ]
    assert await db.fetchval("SELECT framework_param('alert_value_threshold')") == 5000
    for view in VIEWS:
        assert await columns(db, view) == await columns(rm, view), view

    # Deals of this test's own, rolled back: the other rows in the database are unknown, so
    # only these are looked at. Their events are the newest (the data's now: 2031-01-15).
    p = uuid.uuid4().hex[:8]
    now = datetime(2031, 1, 15, 12, 0, tzinfo=UTC)
    rows = [
        # deal_id, stage, amount, health_category, expected_close_date, close_date_pushes
        (f"s-{p}-risk", "proposal", Decimal("5000.00"), "warning", date(2031, 2, 1), 0),
        (f"s-{p}-small", "proposal", Decimal("4999.99"), "critical", date(2031, 2, 1), 0),
        (f"s-{p}-fine", "negotiation", Decimal("90000.00"), "healthy", date(2031, 1, 10), 2),
        (f"s-{p}-won", "closed_won", Decimal("7000.00"), "warning", date(2030, 12, 1), 0),
    ]
    async with rolled_back(db) as conn:
        await conn.executemany(
            "INSERT INTO deals (deal_id, stage, amount, health_score, health_category, "
            "close_probability, expected_close_date, close_date_pushes, created_at, "
            "stage_entered_at, closed_at, last_event_id, last_event_time) "
            "VALUES ($1, $2, $3, 50, $4, 40, $5, $6, $7, $7, $8, $1 || '-e', $7)",
            [
                (
                    d,
                    stage,
                    amount,
                    category,
                    due,
                    pushes,
                    now,
                    now if stage == "closed_won" else None,
                )
                for d, stage, amount, category, due, pushes in rows
            ],
        )
        assert await conn.fetchval("SELECT data_as_of()") == now
        at_risk = await conn.fetch(
            "SELECT deal_id, amount, health_category FROM at_risk_deals WHERE deal_id LIKE $1",
            f"s-{p}-%",
        )
        assert [tuple(r) for r in at_risk] == [(f"s-{p}-risk", Decimal("5000.00"), "warning")]
        slipped = await conn.fetch(
            "SELECT as_of, deal_id, overdue, days_overdue, pushed FROM slipped_deals "
            "WHERE deal_id LIKE $1",
            f"s-{p}-%",
        )
        assert [tuple(r) for r in slipped] == [(date(2031, 1, 15), f"s-{p}-fine", True, 5, True)]
        won = await conn.fetchrow(
            "SELECT deal_count, total_value FROM won_deals_summary WHERE month = $1",
            date(2031, 1, 1),
        )
        assert tuple(won) == (1, Decimal("7000.00"))
    assert not await db.fetchval("SELECT count(*) FROM deals WHERE deal_id LIKE $1", f"s-{p}-%")
