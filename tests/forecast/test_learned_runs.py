"""A forecast run with a deal champion in the registry: the learned months (timing model,
new business, seasonal), their parts stored, and the errors later runs weigh them by."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import numpy as np
import pytest

from tests.models.test_deal_model import _events, _month_start
from tests.services import fresh_database
from worker.backtest.replay import Replay
from worker.forecast.runs import past_errors, run_forecast
from worker.models.deal import Snapshot, fit_deal_model, training_set
from worker.models.deal_features import build_history
from worker.models.registry import new_version
from worker.store import forecasts, models

CUT = datetime(2017, 3, 1, tzinfo=UTC)  # a quarter's last month: owner A's deals are won

INSERT = """
INSERT INTO deals (deal_id, name, owner, amount, stage, expected_close_date, created_at,
                   stage_entered_at, closed_at, last_activity_at, close_probability,
                   last_event_id, last_event_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 50, $11, $12)
"""


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(_events())


async def _insert(conn: asyncpg.Connection, states) -> None:
    await conn.executemany(
        INSERT,
        [
            (
                s.deal_id,
                s.name,
                s.owner,
                s.amount,
                str(s.stage),
                s.expected_close_date,
                s.created_at,
                s.stage_entered_at,
                s.closed_at,
                s.last_activity_at,
                s.last_event_id,
                s.last_event_time,
            )
            for s in states
        ],
    )


@pytest.fixture(scope="module")
async def setup(services, replay) -> AsyncIterator[tuple]:
    outcomes = replay.outcomes()
    history = build_history(outcomes.values(), [], CUT)
    snaps = [Snapshot(_month_start(i), replay.open_at(_month_start(i))) for i in range(14)]
    model = fit_deal_model(training_set(snaps, outcomes, history, CUT), history, months=4)
    async with fresh_database(services.database_url, "revintel_lf") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
        async with pool.acquire() as conn:
            await _insert(conn, replay.at(CUT))  # every deal as it was at the cut
            mv = new_version("deal", model, trained_at=CUT, train_to=CUT)
            await models.save(conn, mv, "champion")
        yield pool, model, mv
        await pool.close()


async def test_a_champion_makes_the_run_learned(setup, replay):
    pool, model, mv = setup
    published = await run_forecast(
        pool, as_of=CUT.date(), kind="manual", months=3, framework_version=None
    )
    assert published is not None and published.model_version == mv.version
    first = published.months[0]
    assert first.method == "learned" and first.parts is not None
    # the open deals' part is the model's P(won in March) on the deals as the merge left
    # them (not as read back from the table), times their amounts
    open_now = replay.open_at(CUT)
    win = model.predict(open_now, CUT).win[:, 0]
    amounts = np.array([float(d.amount) for d in open_now])
    assert first.parts.open_pipeline + first.parts.overdue == pytest.approx((amounts * win).sum())
    # owner A's deals are won in the quarter's last month, never the month they were created:
    # nothing was ever won by a deal created in its close month
    assert first.parts.new_business == 0.0
    december = sum(
        replay.won_value(o.deal_id)
        for o in replay.outcomes().values()
        if o.won and (o.closed_at.year, o.closed_at.month) == (2016, 12)
    )
    assert december > 0 and first.parts.seasonal == pytest.approx(december)
    # no earlier learned run: the model and the seasonal forecast weigh the same
    point = first.parts.open_pipeline + first.parts.overdue + first.parts.new_business
    assert first.parts.model_weight == 0.5
    assert first.p50 == pytest.approx(0.5 * point + 0.5 * december)
    assert first.p10 < first.p50 < first.p90
    async with pool.acquire() as conn:
        run = await conn.fetchrow(
            "SELECT model_version FROM forecast_runs WHERE run_id = $1", published.run_id
        )
        row = await conn.fetchrow(
            "SELECT method, model_point, seasonal, p50 FROM forecast_snapshots "
            "WHERE run_id = $1 AND month = $2",
            published.run_id,
            date(2017, 3, 1),
        )
    assert run["model_version"] == mv.version
    assert row["method"] == "learned"
    assert float(row["model_point"]) == pytest.approx(point)
    assert float(row["p50"]) == pytest.approx(first.p50)


async def test_later_runs_see_how_month_zero_did(setup, replay):
    pool, _, _ = setup
    published = await run_forecast(
        pool, as_of=CUT.date(), kind="manual", months=1, framework_version=None
    )
    assert published is not None
    march = [
        o for o in replay.outcomes().values() if (o.closed_at.year, o.closed_at.month) == (2017, 3)
    ]
    async with pool.acquire() as conn:
        # March's closes arrive
        await conn.executemany(
            "UPDATE deals SET stage = $2, closed_at = $3 WHERE deal_id = $1",
            [(o.deal_id, "closed_won" if o.won else "closed_lost", o.closed_at) for o in march],
        )
        rows = await forecasts.past_month_zero(conn, date(2017, 4, 1))
    won = sum(replay.won_value(o.deal_id) for o in march if o.won)
    assert won > 0
    (row,) = rows  # the first learned run of March
    assert row["month"] == date(2017, 3, 1) and float(row["actual"]) == pytest.approx(won)
    errors = past_errors(rows)
    assert errors.model == [pytest.approx((float(row["model_point"]) - won) / won)]
    assert errors.combined == [pytest.approx((float(row["p50"]) - won) / won)]
