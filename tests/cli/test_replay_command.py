"""`revintel replay` as a user runs it: a second bar follows the worker applying the events
(the command ends when all are), and a database that already holds other deals is warned
about before anything is published."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.services import fresh_database, spawn, worker_env
from worker.testdata.crm_export import export_events

pytestmark = pytest.mark.integration
LIMIT = 300


@pytest.fixture
async def empty_db(services):
    """A database of its own (requested before ``start_worker``: dropped after the worker
    stopped)."""
    async with fresh_database(services.database_url, "revintel_replaycli") as url:
        yield url


async def run_replay(*args: str, env: dict[str, str], within: float = 150) -> tuple[int, str]:
    proc = await spawn("replay", *args, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, out.decode()


async def insert_other_deal(url: str, deal_id: str) -> None:
    """A deal of another origin (the sample stream, a seed...), straight into the table."""
    conn = await asyncpg.connect(url)
    try:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        await conn.execute(
            "INSERT INTO deals (deal_id, stage, created_at, stage_entered_at, last_event_id, "
            "last_event_time) VALUES ($1, 'proposal', $2, $2, $1 || '-e', $2)",
            deal_id,
            at,
        )
    finally:
        await conn.close()


async def test_replay_follows_the_worker_and_warns_about_other_deals(
    crm_export_dir, empty_db, settings, start_worker
):
    events = export_events(crm_export_dir)[:LIMIT]
    s = settings.model_copy(update={"database_url": empty_db})
    await insert_other_deal(empty_db, "D-other-1")
    await start_worker(s)
    code, out = await run_replay(
        str(crm_export_dir), "--limit", str(LIMIT), "--no-ticks", env=worker_env(s)
    )
    assert code == 0, out
    flat = " ".join(out.split())
    assert "already holds 1 deal not from this export (D-other-1)" in flat, out
    assert re.search(rf"publishing\s.*{LIMIT}/{LIMIT}", out), out
    assert re.search(rf"applying\s.*{LIMIT}/{LIMIT}", out), out
    # the command ended only once the worker had applied every event
    conn = await asyncpg.connect(empty_db)
    try:
        applied = await conn.fetchval(
            "SELECT count(*) FROM applied_events WHERE event_id = ANY($1::text[])",
            [e.id for e in events],
        )
    finally:
        await conn.close()
    assert applied == LIMIT


async def test_replay_into_an_empty_database_does_not_warn(
    crm_export_dir, empty_db, settings, start_worker
):
    s = settings.model_copy(update={"database_url": empty_db})
    await start_worker(s)
    args = (str(crm_export_dir), "--limit", "50", "--no-ticks")
    code, out = await run_replay(*args, env=worker_env(s))
    assert code == 0, out
    assert "warning" not in out
    # replayed again: the export's own deals are not "other data"
    code, out = await run_replay(*args, env=worker_env(s))
    assert code == 0 and "warning" not in out, out
