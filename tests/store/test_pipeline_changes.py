"""sql/007_pipeline_changes.sql: every movement of a period's pipeline between two snapshots,
on hand-written snapshots and deals, and the identity opening + flows = closing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest

from tests.services import fresh_database

pytestmark = pytest.mark.integration

S, U = date(2026, 3, 1), date(2026, 3, 8)  # the opening and closing snapshot dates
Q = (date(2026, 1, 1), date(2026, 3, 31))  # the period: Q1
IN_Q, AFTER_Q = date(2026, 3, 20), date(2026, 4, 15)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# deal -> (stage now, amount now, created, closed_at, expected close now)
DEALS = {
    "stay-up": ("proposal", 1200, date(2026, 1, 5), None, IN_Q),
    "stay-down": ("qualification", 700, date(2026, 1, 5), None, IN_Q),
    "stay-moved": ("negotiation", 500, date(2026, 1, 5), None, IN_Q),
    "won": ("closed_won", 3000, date(2026, 1, 5), at(date(2026, 3, 4)), IN_Q),
    "lost": ("closed_lost", 400, date(2026, 1, 5), at(date(2026, 3, 5)), IN_Q),
    "pushed": ("proposal", 900, date(2026, 1, 5), None, AFTER_Q),
    "removed": ("proposal", 100, date(2026, 1, 5), None, IN_Q),
    "pulled": ("proposal", 800, date(2026, 1, 5), None, IN_Q),
    "created": ("prospecting", 600, date(2026, 3, 3), None, IN_Q),
    "flash": ("closed_won", 250, date(2026, 3, 2), at(date(2026, 3, 6)), IN_Q),
    "won-later": ("closed_won", 50, date(2026, 1, 5), at(date(2026, 3, 10)), IN_Q),
}
# snapshot date -> deal -> (stage, amount, expected close)
SNAPSHOTS = {
    S: {
        "stay-up": ("proposal", 1000, IN_Q),
        "stay-down": ("qualification", 900, IN_Q),
        "stay-moved": ("proposal", 500, IN_Q),
        "won": ("negotiation", 2800, IN_Q),  # valued at its opening amount when it leaves
        "lost": ("proposal", 400, IN_Q),
        "pushed": ("proposal", 900, IN_Q),
        "removed": ("proposal", 100, IN_Q),
        "pulled": ("proposal", 800, AFTER_Q),  # outside the period at the opening
        "won-later": ("negotiation", 50, IN_Q),
    },
    U: {
        "stay-up": ("proposal", 1200, IN_Q),
        "stay-down": ("qualification", 700, IN_Q),
        "stay-moved": ("negotiation", 500, IN_Q),
        "pushed": ("proposal", 900, AFTER_Q),
        "pulled": ("proposal", 800, IN_Q),
        "created": ("prospecting", 600, IN_Q),
        "won-later": ("negotiation", 50, IN_Q),  # won after the closing snapshot: stays
    },
}


@pytest.fixture(scope="module")
async def pc(services) -> AsyncIterator[asyncpg.Connection]:
    async with fresh_database(services.database_url, "revintel_changes") as url:
        conn = await asyncpg.connect(url)
        try:
            for deal, (stage, amount, created, closed, close) in DEALS.items():
                await conn.execute(
                    "INSERT INTO deals (deal_id, stage, amount, created_at, stage_entered_at, "
                    "closed_at, expected_close_date, last_event_id, last_event_time) "
                    "VALUES ($1, $2, $3, $4, $4, $5, $6, 'e', $4)",
                    deal,
                    stage,
                    amount,
                    at(created),
                    closed,
                    close,
                )
            for day, rows in SNAPSHOTS.items():
                for deal, (stage, amount, close) in rows.items():
                    await conn.execute(
                        "INSERT INTO deal_snapshots (snapshot_date, deal_id, taken_at, currency, "
                        "stage, amount, expected_close_date, interactions, objections_handled, "
                        "has_champion, budget_confirmed, decision_maker_engaged, competitors, "
                        "close_date_pushes, created_at, stage_entered_at) VALUES "
                        "($1, $2, $3, 'USD', $4, $5, $6, 0, 0, false, false, false, 0, 0, $3, $3)",
                        day,
                        deal,
                        at(day, 0),
                        stage,
                        amount,
                        close,
                    )
            yield conn
        finally:
            await conn.close()


async def flows(conn, since=S, until=U) -> dict[str, tuple[int, float]]:
    rows = await conn.fetch("SELECT * FROM pipeline_changes($1, $2, $3, $4)", since, until, *Q)
    return {r["movement"]: (r["deals"], float(r["value"])) for r in rows}


async def test_each_movement_is_counted_once_with_its_value(pc):
    f = await flows(pc)
    assert f == {
        "opening": (8, 1000 + 900 + 500 + 2800 + 400 + 900 + 100 + 50),
        "created": (2, 600 + 250),  # "flash" was created and won in between
        "pulled_in": (1, 800),
        "pushed_out": (1, 900),
        "won": (2, 2800 + 250),
        "lost": (1, 400),
        "removed": (1, 100),
        "amount_up": (1, 200),
        "amount_down": (1, 200),
        "stage_moved": (1, 0),
        "closing": (6, 1200 + 700 + 500 + 800 + 600 + 50),
    }


async def test_the_flows_add_up(pc):
    f = await flows(pc)
    signs = {"created": 1, "pulled_in": 1, "pushed_out": -1, "won": -1, "lost": -1, "removed": -1}
    deals = f["opening"][0] + sum(s * f[k][0] for k, s in signs.items())
    value = f["opening"][1] + sum(s * f[k][1] for k, s in signs.items())
    value += f["amount_up"][1] - f["amount_down"][1]
    assert (deals, value) == f["closing"]


async def test_a_date_without_snapshot_uses_the_latest_before_it(pc):
    row = await pc.fetchrow(
        "SELECT opening_date, closing_date FROM pipeline_changes($1, $2, $3, $4)",
        date(2026, 3, 3),
        date(2026, 3, 20),
        *Q,
    )
    assert (row["opening_date"], row["closing_date"]) == (S, U)
