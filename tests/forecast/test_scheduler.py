"""worker/forecast_job.py without services: the contract conversion, the cron schedule, the
scheduler loop (fake clock) and run_now (fake forecast and producer), CLI errors."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

import worker.forecast.runs as fj
import worker.forecast.scheduler as scheduler_module
from schemas.forecasts import ForecastMonth, ForecastPublished
from tests.tasks.fake_clock import FakeClock
from worker.cli.forecast import register
from worker.forecast.maths import compute_forecast, from_rows
from worker.forecast.runs import compute_months, to_published
from worker.forecast.scheduler import DEFAULT_CRON, DEFAULT_DAILY_CRON, ForecastScheduler, next_run

AS_OF = date(2026, 3, 14)
ROWS = [
    {"amount": 10_000, "close_probability": 50, "expected_close_date": date(2026, 3, 20)},
    {"amount": 4_000, "close_probability": 100, "expected_close_date": date(2026, 1, 5)},
    {"amount": 8_000, "close_probability": 25, "expected_close_date": date(2026, 5, 2)},
    {"amount": None, "close_probability": 60, "expected_close_date": date(2026, 5, 9)},
    {"amount": 2_500, "close_probability": None, "expected_close_date": date(2026, 4, 30)},
    {"amount": 7_000, "close_probability": 40, "expected_close_date": None},
    {"amount": 9_000, "close_probability": 70, "expected_close_date": date(2027, 1, 1)},
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def published(**overrides) -> ForecastPublished:
    months, coverage, overdue = compute_months(ROWS, AS_OF, 3, seed=1, half_life_days=30)
    args = {
        "run_id": uuid.UUID(int=7),
        "as_of": AS_OF,
        "as_of_source": "data",
        "generated_from": utc(2026, 3, 14, 9, 30),
        "kind": "scheduled",
        "framework_version": "2026.11.1",
        "seed": 1,
    }
    return to_published(months, coverage, overdue, **{**args, **overrides})


# --------------------------------------------------------------------------- contract


def test_contract_carries_the_months_totals_and_coverage():
    on_time = [r for r in ROWS if r["expected_close_date"] != date(2026, 1, 5)]
    months = compute_forecast(from_rows(on_time), AS_OF, 3, seed=1)
    f = published()
    assert [ForecastMonth.model_validate(m.model_dump()) for m in months] == f.months
    assert [m.month for m in f.months] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    assert f.horizon_months == 3
    assert f.totals.deal_count == 4  # all but the undated, the overdue and the 2027 deal
    assert f.totals.pipeline == pytest.approx(10_000 + 8_000 + 2_500)
    assert f.totals.weighted == pytest.approx(5_000 + 2_000)
    assert f.totals.expected_wins == pytest.approx(0.5 + 0.25 + 0.6)
    c = f.coverage
    assert (c.open_deals, c.included, c.no_close_date, c.beyond_horizon) == (7, 4, 1, 1)
    assert (c.overdue, c.overdue_folded, c.no_amount, c.no_probability) == (1, 0, 1, 1)
    assert f.months[0].deal_count == 1  # the January deal is not folded into March


def test_overdue_deals_are_a_line_of_their_own_with_decayed_probability():
    o = published().overdue
    # the 4,000 deal due 5 January, sure at 100 %, 68 days overdue at a 30-day half-life
    decay = 0.5 ** (68 / 30)
    assert (o.deal_count, o.pipeline, o.median_days_overdue) == (1, 4_000, 68)
    assert o.weighted == pytest.approx(4_000 * decay)
    assert o.expected_wins == pytest.approx(decay)
    assert (o.p10, o.p50, o.p90, o.method) == (0, 0, 4_000, "exact")  # won with p = 0.208
    assert o.half_life_days == 30


def test_contract_round_trips_through_json():
    f = published()
    data = json.loads(f.model_dump_json())
    assert data["run_id"] == str(uuid.UUID(int=7))
    assert data["as_of"] == "2026-03-14"
    assert data["months"][0]["month"] == "2026-03-01"
    assert set(data["months"][0]) == {
        "month", "deal_count", "pipeline", "weighted", "p10", "p50", "p90", "expected_wins",
        "method", "parts",
    }  # fmt: skip
    assert data["months"][0]["parts"] is None and data["model_version"] == "heuristic"
    assert ForecastPublished.model_validate_json(f.model_dump_json()) == f


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"kind": "hourly"}, "kind\n  Input should be 'scheduled', 'daily' or 'manual'"),
        ({"as_of_source": "clock"}, "as_of_source\n  Input should be 'data' or 'explicit'"),
    ],
)
def test_contract_rejects_unknown_values(overrides, reason):
    match = re.escape(f"1 validation error for ForecastPublished\n{reason}")
    with pytest.raises(ValidationError, match=match):
        published(**overrides)


def test_contract_rejects_extra_fields():
    data = json.loads(published().model_dump_json())
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="Extra inputs"):
        ForecastPublished.model_validate(data)


# --------------------------------------------------------------------------- cron


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 3, 14, 1, 30), (utc(2026, 3, 14, 1, 45), "scheduled")),
        (utc(2026, 3, 14, 1, 45), (utc(2026, 3, 14, 2, 0), "daily")),  # both due: one daily run
        (utc(2026, 3, 14, 2, 0), (utc(2026, 3, 14, 2, 15), "scheduled")),  # strictly after
        (utc(2026, 3, 14, 2, 0, 0, 1), (utc(2026, 3, 14, 2, 15), "scheduled")),
        (utc(2026, 12, 31, 23, 59, 59), (utc(2027, 1, 1, 0, 0), "scheduled")),
    ],
)  # fmt: skip
def test_next_run_default_schedule(after, expected):
    assert next_run(DEFAULT_CRON, DEFAULT_DAILY_CRON, after) == expected


def test_next_run_daily_between_scheduled_ticks():
    after = utc(2026, 3, 14, 2, 0)
    assert next_run("*/15 * * * *", "7 2 * * *", after) == (utc(2026, 3, 14, 2, 7), "daily")
    assert next_run("*/15 * * * *", "7 2 * * *", utc(2026, 3, 14, 2, 7)) == (
        utc(2026, 3, 14, 2, 15),
        "scheduled",
    )


def test_next_run_needs_an_aware_time():
    with pytest.raises(ValueError, match="timezone"):
        next_run(
            DEFAULT_CRON,
            DEFAULT_DAILY_CRON,
            datetime(2026, 3, 14),
        )


def test_not_before_leaves_a_skew_margin_of_at_most_half_an_interval():
    s = ForecastScheduler(None, None, topic="t", cron="* * * * *")
    due = utc(2026, 3, 14, 2, 15)
    assert s._not_before(due, "scheduled") == due - timedelta(seconds=30)
    s = ForecastScheduler(None, None, topic="t")
    assert s._not_before(due, "scheduled") == due - timedelta(seconds=60)
    assert s._not_before(utc(2026, 3, 14, 2), "daily") == utc(2026, 3, 14, 1, 59)


@pytest.mark.parametrize("kwargs", [{"cron": "every minute"}, {"daily_cron": "0 25 * * *"}])
def test_scheduler_rejects_invalid_cron(kwargs):
    with pytest.raises(ValueError, match="cron"):
        ForecastScheduler(None, None, topic="t", **kwargs)


def test_scheduler_takes_its_schedule_from_settings():
    from worker.settings import Settings

    s = ForecastScheduler.from_settings(Settings(), None, None, framework_version="v")
    assert (s.topic, s.cron, s.daily_cron, s.months, s.seed) == (
        "revintel.forecasts",
        DEFAULT_CRON,
        DEFAULT_DAILY_CRON,
        6,
        0,
    )
    custom = Settings(
        forecast_cron="*/5 * * * *",
        forecast_daily_cron="30 3 * * *",
        forecast_months=12,
        forecast_seed=9,
    )
    s = ForecastScheduler.from_settings(custom, None, None, framework_version="v")
    assert (s.cron, s.daily_cron, s.months, s.seed) == ("*/5 * * * *", "30 3 * * *", 12, 9)


# --------------------------------------------------------------------------- scheduler loop


async def test_scheduler_loop_runs_each_tick_once_and_survives_failures():
    clock = FakeClock(utc(2026, 3, 14, 1, 40))
    calls: list[tuple[str, datetime, datetime]] = []
    done = asyncio.Event()

    class Recording(ForecastScheduler):
        async def run_now(self, kind="manual", *, not_before=None):
            calls.append((kind, clock.now, not_before))
            if len(calls) == 2:
                raise RuntimeError("database away")
            if len(calls) == 3:
                clock.now += timedelta(minutes=40)  # overran: ticks 02:30, 02:45 are missed
            if len(calls) == 4:
                done.set()
                await asyncio.Event().wait()  # park until stopped
            return None

    s = Recording(None, None, topic="t", clock=clock, sleep=clock.sleep)
    s.start()
    s.start()  # idempotent
    await asyncio.wait_for(done.wait(), 5)
    assert s.running
    await s.stop()
    assert not s.running
    assert [(k, t) for k, t, _ in calls] == [
        ("scheduled", utc(2026, 3, 14, 1, 45)),
        ("daily", utc(2026, 3, 14, 2, 0)),
        ("scheduled", utc(2026, 3, 14, 2, 15)),
        ("scheduled", utc(2026, 3, 14, 3, 0)),
    ]
    assert calls[1][2] == utc(2026, 3, 14, 1, 59)  # not_before: tick less the skew margin
    assert s.failures == 1
    assert s.last_error == "RuntimeError: database away"
    assert s.next_due == utc(2026, 3, 14, 3, 0)
    await s.stop()  # stopping twice is harmless


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list]] = []

    async def send(self, topic, value, key, headers):
        self.sent.append((topic, key, value, headers))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


async def test_run_now_publishes_and_records_metrics(monkeypatch):
    f = published()
    results = [f, None]
    seen_kwargs = []

    async def fake_run(pool, **kwargs):
        seen_kwargs.append(kwargs)
        return results.pop(0)

    monkeypatch.setattr(scheduler_module, "run_forecast", fake_run)
    producer = FakeProducer()
    s = ForecastScheduler(
        "pool", producer, topic="fc", months=3, seed=1, framework_version="2026.11.1",
        half_life_days=21, clock=lambda: utc(2026, 3, 14, 9, 45),
    )  # fmt: skip
    assert await s.run_now("scheduled") == f
    assert seen_kwargs[0] == {
        "as_of": None,
        "kind": "scheduled",
        "months": 3,
        "seed": 1,
        "framework_version": "2026.11.1",
        "not_before": None,
        "half_life_days": 21,
    }
    ((topic, key, value, headers),) = producer.sent
    assert (topic, key) == ("fc", b"2026-03-14")
    assert ForecastPublished.model_validate_json(value) == f
    assert dict(headers) == {"run_id": str(f.run_id).encode(), "kind": b"scheduled"}
    assert (s.runs, s.skipped, s.last_run_at, s.last_as_of) == (
        1,
        0,
        utc(2026, 3, 14, 9, 45),
        AS_OF,
    )
    assert s.last_duration_ms is not None and s.last_duration_ms >= 0

    assert await s.run_now("scheduled") is None  # lock held elsewhere
    assert (s.runs, s.skipped, len(producer.sent)) == (1, 1, 1)


async def test_run_forecast_rejects_a_bad_horizon():
    with pytest.raises(ValueError, match="months"):
        await fj.run_forecast(None, as_of=AS_OF, kind="manual", months=0, framework_version=None)


# --------------------------------------------------------------------------- CLI errors


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.mark.parametrize("command", [["forecast"], ["dashboard"]])
def test_cli_reports_an_unreachable_database(command):
    env = {"DATABASE_URL": "postgresql://u:s3cret@127.0.0.1:1/nowhere", "COLUMNS": "200"}
    result = CliRunner().invoke(cli(), command, env=env)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert "127.0.0.1:1" in result.output
    assert "s3cret" not in result.output


def test_cli_rejects_a_bad_date():
    result = CliRunner().invoke(cli(), ["forecast", "--as-of", "14/03/2026"])
    assert result.exit_code == 2
    assert "not an ISO date" in result.output
