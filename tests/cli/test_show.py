"""`revintel show`: the title counts every matching deal (not the rows shown), owner, expected
close date and alert level are columns, filters by owner, stage and at-risk, and long cells are
cut to fit the terminal."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

from tests.services import fresh_database

pytestmark = pytest.mark.integration

DEALS = [
    # deal id, owner, stage, amount, alert level, risk
    ("SHOW-1", "Ana Silva", "proposal", 90_000, "critical", "No activity for 40 days"),
    ("SHOW-2", "Ana Silva", "negotiation", 50_000, "none", ""),
    ("SHOW-3", "Bo Chen", "proposal", 30_000, "at_risk", "Close date pushed 3 times"),
    ("SHOW-4", "Bo Chen", "prospecting", 10_000, "none", ""),
]


@pytest.fixture(scope="module")
async def shown_db(services) -> AsyncIterator[str]:
    async with fresh_database(services.database_url, prefix="revintel_show") as url:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            for deal, owner, stage, amount, level, risk in DEALS:
                await conn.execute(
                    """INSERT INTO deals (deal_id, name, company, owner, stage, amount,
                           expected_close_date, created_at, stage_entered_at, last_event_id,
                           last_event_time, health_score, health_category, close_probability,
                           alert_level, risk_factors)
                       VALUES ($1, $1 || ' ' || repeat('very long name ', 8), 'Acme', $2, $3,
                           $4, DATE '2026-03-31', now(), now(), 'e-' || $1, now(), 50,
                           'warning', 42.5, $5, $6::jsonb)""",
                    deal,
                    owner,
                    stage,
                    amount,
                    level,
                    f'["{risk}"]' if risk else "[]",
                )
        finally:
            await conn.close()
        yield url


async def show(url: str, *args: str, columns: int = 200, prefix: str = "SHOW-") -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "show",
        "--prefix",
        prefix,
        *args,
        env={**os.environ, "DATABASE_URL": url, "COLUMNS": str(columns)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_title_counts_every_deal_not_the_rows_shown(shown_db):
    out = await show(shown_db, "--limit", "2")
    assert "Scored deals (2 of 4)" in out, out
    assert "SHOW-1" in out and "SHOW-2" in out and "SHOW-3" not in out
    assert "Scored deals (4)" in await show(shown_db)


async def test_owner_close_date_and_alert_level_are_shown(shown_db):
    out = await show(shown_db)
    header = next(line for line in out.splitlines() if "deal" in line and "owner" in line)
    assert "closes" in header and "alert" in header, out
    line = next(line for line in out.splitlines() if "SHOW-1" in line)
    assert "Ana Silva" in line and "2026-03-31" in line and "critical" in line, out


async def test_filters_by_owner_stage_and_at_risk(shown_db):
    out = await show(shown_db, "--owner", "bo chen")
    assert "SHOW-3" in out and "SHOW-4" in out and "SHOW-1" not in out and "(2)" in out
    out = await show(shown_db, "--stage", "proposal")
    assert "SHOW-1" in out and "SHOW-3" in out and "SHOW-2" not in out
    out = await show(shown_db, "--at-risk")
    assert "SHOW-1" in out and "SHOW-3" in out and "SHOW-2" not in out and "SHOW-4" not in out


async def test_fits_the_terminal_width(shown_db):
    out = await show(shown_db, columns=120)
    assert max(len(line) for line in out.splitlines()) <= 120, out
    assert "…" in out  # the long names are cut, not wrapped over many lines
    assert sum("SHOW-1" in line for line in out.splitlines()) == 1


async def test_a_deal_without_scores_is_shown_with_empty_score_cells(shown_db):
    """An incomplete deal (seen only through a change) has no scores until its creation."""
    import asyncpg

    conn = await asyncpg.connect(shown_db)
    try:
        await conn.execute(
            """INSERT INTO deals (deal_id, stage, amount, created_at, stage_entered_at,
                   last_event_id, last_event_time, incomplete)
               VALUES ('NOSCORE-1', 'prospecting', 1234, now(), now(), 'e-ns', now(), true)"""
        )
    finally:
        await conn.close()
    line = next(
        line
        for line in (await show(shown_db, prefix="NOSCORE-")).splitlines()
        if "NOSCORE-1" in line
    )
    assert "1,234" in line and "None" not in line and "%" not in line, line
