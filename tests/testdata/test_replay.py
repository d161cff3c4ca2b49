"""The public CRM export replayed through Kafka and the running worker, checked against the
CSV read independently (not through worker.testdata.crm_export); and the synthetic seed data
(which needs no export) through the same path."""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.services import eventually, fresh_database, unique
from worker.cli.data import publish
from worker.testdata.crm_export import export_events

pytestmark = pytest.mark.integration
STAGES = {
    "Won": "closed_won",
    "Lost": "closed_lost",
    "Engaging": "qualification",
    "Prospecting": "prospecting",
}


def csv_expectations(path: Path) -> tuple[dict[str, tuple[str, Decimal | None]], dict]:
    """opportunity id -> (our stage, won value), and won revenue per close month."""
    with (path / "sales_pipeline.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    deals = {
        f"crm-{r['opportunity_id']}": (
            STAGES[r["deal_stage"]],
            Decimal(r["close_value"]) if r["deal_stage"] == "Won" else None,
        )
        for r in rows
    }
    per_month: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["deal_stage"] == "Won":
            per_month[r["close_date"][:7]] += Decimal(r["close_value"])
    return deals, dict(per_month)


@pytest.fixture(scope="module")
async def replay_db(services):
    """A database of its own (views aggregate everything); dropped after the module, so only
    after the test's worker has stopped."""
    async with fresh_database(services.database_url, "revintel_replay") as url:
        yield url


@pytest.mark.crm_data  # checked before replay_db is created (tests/conftest.py)
async def test_full_replay_lands_every_deal_and_the_won_revenue(
    crm_export_dir, replay_db, settings, start_worker
):
    expected, won_per_month = csv_expectations(crm_export_dir)
    events = export_events(crm_export_dir)
    s = settings.model_copy(update={"database_url": replay_db, "batch_size": 1000})
    worker = await start_worker(s)
    started = time.perf_counter()
    await publish(events, settings=s)

    async def all_applied():
        return worker.deals.stats["applied"] + worker.deals.stats["stale"] >= len(events)

    await eventually(all_applied, within=600)
    seconds = time.perf_counter() - started
    print(
        f"replayed {len(events)} events in {seconds:.1f}s "
        f"({len(events) / seconds:,.0f} events/s, {worker.deals.stats['batches']} batches)"
    )
    assert worker.deals.stats["applied"] == len(events)
    assert worker.deals.stats["dead_lettered"] == 0

    conn = await asyncpg.connect(replay_db)
    try:
        rows = await conn.fetch("SELECT deal_id, stage, amount FROM deals")
        assert len(rows) == len(expected) == 8_800
        got = {r["deal_id"]: r for r in rows}
        assert Counter(r["stage"] for r in rows) == Counter(s for s, _ in expected.values())
        for deal_id, (stage, won_value) in expected.items():
            assert got[deal_id]["stage"] == stage, deal_id
            if won_value is not None:
                assert got[deal_id]["amount"] == won_value, deal_id
        view = {
            r["month"].strftime("%Y-%m"): r["total_value"]
            for r in await conn.fetch("SELECT * FROM won_deals_summary")
        }
        assert view == won_per_month
        assert await conn.fetchval("SELECT count(*) FROM applied_events") == len(events)
    finally:
        await conn.close()


async def test_seed_is_deterministic_and_idempotent(settings, start_worker, db):
    from worker.testdata.seed import generate_deals, summarize

    prefix = unique("seedtest")
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    seed = int(prefix.rsplit("-", 1)[1], 16) % 1_000_000
    events = generate_deals(30, seed, as_of)
    assert events == generate_deals(30, seed, as_of)  # deterministic for a seed
    worker = await start_worker(settings)
    await publish(events, settings=settings)
    await publish(events, settings=settings)  # running it twice creates nothing new
    deal_ids = sorted({e.subject for e in events})

    async def done():
        return worker.deals.stats["applied"] + worker.deals.stats["duplicates"] >= 2 * len(events)

    await eventually(done, within=120)
    assert worker.deals.stats["applied"] == len(events)
    rows = await db.fetch(
        "SELECT stage, amount FROM deals WHERE deal_id = ANY($1::text[])", deal_ids
    )
    assert len(rows) == 30
    summary = summarize(events)
    assert Counter(r["stage"] for r in rows) == Counter(
        {stage.value: n for stage, n in summary.by_stage.items() if n}
    )
