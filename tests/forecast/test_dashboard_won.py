"""The dashboard's actual won value and currency, read from real PostgreSQL: won deals by
close month (UTC) from six months before the as-of month to the as-of day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from tests.services import fresh_database
from worker.forecast.dashboard import WonMonth, load_dashboard

pytestmark = pytest.mark.integration

AS_OF = date(2026, 3, 14)
WON = [  # deal id, amount, closed at (UTC)
    ("w-old", "999.00", datetime(2025, 8, 31, 23, 0, tzinfo=UTC)),  # before the window
    ("w-sep", "1000.00", datetime(2025, 9, 1, 0, 30, tzinfo=UTC)),
    ("w-jan-1", "2500.50", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
    ("w-jan-2", "1500.25", datetime(2026, 1, 31, 23, 59, tzinfo=UTC)),
    ("w-mar", "4000.00", datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),  # the as-of day counts
]


@pytest.fixture
async def pool(services) -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database(services.database_url, "revintel_dashwon") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO deals (deal_id, stage, amount, currency, created_at, "
                "stage_entered_at, closed_at, last_event_id, last_event_time) "
                "VALUES ($1, 'closed_won', $2, 'EUR', $3, $3, $3, $1 || '-e', $3)",
                [(d, Decimal(a), at) for d, a, at in WON],
            )
            await conn.execute(
                "INSERT INTO deals (deal_id, stage, amount, currency, created_at, "
                "stage_entered_at, last_event_id, last_event_time) "
                "VALUES ('o-usd', 'proposal', 10, 'USD', $1, $1, 'o-e', $1)",
                datetime(2026, 3, 1, tzinfo=UTC),
            )
        yield pool
        await pool.close()


async def test_dashboard_reads_the_won_value_of_recent_months_and_the_currency(pool):
    data = await load_dashboard(pool, AS_OF, months=2)
    assert data.won == [
        WonMonth(month=date(2025, 9, 1), deal_count=1, won=1000.0),
        WonMonth(month=date(2026, 1, 1), deal_count=2, won=4000.75),
        WonMonth(month=date(2026, 3, 1), deal_count=1, won=4000.0),
    ]
    assert data.currency == "EUR"  # the most common one
