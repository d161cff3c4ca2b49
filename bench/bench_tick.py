"""Benchmark: one clock tick over 1,000,000 open deals, against the real local PostgreSQL.

    eval "$(bash scripts/services.sh env)"
    .venv/bin/python bench/bench_tick.py [--deals N] [--partitions P] [--no-champion]

Creates a fresh database (dropped afterwards), fills it set-based with N open deals spread over
P partitions (industries, stages, amounts, activity and close dates varied), then applies a
first tick (which sets every deal's alert level) and times the next day's tick, the daily
case, to every partition exactly as the worker does (one batch of ticks through
``worker.store.batches.apply_batch`` with the deal projection: partitions in parallel, each
rescored in pages with alert transitions, outbox and snapshot).

Then the same with a deal champion: a deal model is trained on the public CRM export (as
``bench/bench_deal_model.py`` does; the known-signal history of the tests when the export is
not found), registered in the bench database and loaded from it as the worker loads its
champion, and the day after's tick timed with it: every open deal also gets the model's close
probability and its factors in words (the occlusions). Both figures are printed against two
baselines measured in the same run on the same rows:

* read: fetching every open deal's scoring columns (what any rescoring must at least read);
* rewrite: one set-based UPDATE of the score columns of every open deal and one INSERT of a
  snapshot row each (what any rescoring must at least write), without Python in between.

The load average before each phase is printed: on a machine shared with other work, compare
the ratios. Target (issue 15): <= 60 s for 1,000,000 deals on the project's 2-core machines,
with and without a champion. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ticking import LONG, against, bench_pool, filled, tick_all, timed
from worker.domain.deal_batch import apply_deal_batch
from worker.engine import load_framework
from worker.models.deal_scoring import KIND, DealModels
from worker.models.deal_training import TrainedDeal
from worker.store import deals, models
from worker.store.batches import Projection
from worker.tasks.champion import load_deal_models

TARGET_SECONDS = 60.0
TOPIC = "bench.deal-events"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TICK_AT = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)

FILL = """
INSERT INTO deals (deal_id, name, company, owner, industry, amount, currency, stage,
    expected_close_date, lead_score, interactions, objections_handled, has_champion,
    budget_confirmed, decision_maker_engaged, competitors, last_activity_at, close_date_pushes,
    created_at, stage_entered_at, last_event_id, last_event_time, scored_at, health_score,
    health_category, close_probability, alert_level, source_partition)
SELECT 'D' || lpad(i::text, 8, '0'), 'Deal ' || i, 'Company ' || (i % 5000), 'Owner ' || (i % 40),
    (ARRAY['technology', 'healthcare', 'finance', 'retail', NULL])[1 + i % 5],
    1000 + (i::bigint * 7919) % 200000, 'USD',
    (ARRAY['prospecting', 'qualification', 'proposal', 'negotiation'])[1 + i % 4],
    $1::date + (i % 120) - 30, CASE WHEN i % 3 = 0 THEN NULL ELSE i % 101 END, i % 25, i % 4,
    i % 2 = 0, i % 3 = 0, i % 5 = 0, CASE WHEN i % 7 = 0 THEN ARRAY['Contoso'] ELSE '{}' END,
    CASE WHEN i % 6 = 0 THEN NULL ELSE $2::timestamptz + make_interval(days => i % 50) END, i % 3,
    $2::timestamptz, $2::timestamptz + make_interval(days => i % 40), 'e' || i,
    $2::timestamptz + make_interval(days => i % 50),
    $2::timestamptz + make_interval(days => i % 50),
    70, 'healthy', 30, 'none', i % $4
FROM generate_series(1, $3) AS i
"""
READ = """
SELECT deal_id, stage, amount, industry, lead_score, interactions, objections_handled,
       has_champion, budget_confirmed, decision_maker_engaged, competitors, last_activity_at,
       stage_entered_at, created_at, expected_close_date, close_date_pushes, alert_level
FROM deals WHERE stage NOT IN ('closed_won', 'closed_lost')
"""
REWRITE = [
    """UPDATE deals SET health_score = health_score, health_category = health_category,
       close_probability = close_probability, risk_factors = risk_factors,
       score_details = '{}', scored_at = least(scored_at, $1)
       WHERE stage NOT IN ('closed_won', 'closed_lost')""",
    f"""INSERT INTO deal_snapshots (snapshot_date, taken_at, competitors, {deals.SNAPSHOT_COLUMNS})
       SELECT ($1 AT TIME ZONE 'UTC')::date - 1, $1, cardinality(competitors),
              {deals.SNAPSHOT_COLUMNS}
       FROM deals WHERE stage NOT IN ('closed_won', 'closed_lost')""",
]


def train_model() -> tuple[TrainedDeal, str]:
    """A deal model trained on the CRM export's month-start snapshots up to 2017-09-01 (as
    ``bench/bench_deal_model.py``), or on the tests' known-signal history without it."""
    from bench.bench_deal_model import _month_starts
    from worker.backtest.replay import Replay
    from worker.models.deal import Snapshot
    from worker.models.deal_training import KnownAmount, train_deal_model
    from worker.testdata.crm_export import crm_data_dir, export_events

    path = crm_data_dir()
    if path is None:
        from tests.deal_history import history_events, train

        return train(Replay(history_events())), "the tests' known-signal history"
    cut = datetime(2017, 9, 1, tzinfo=UTC)
    events = [e for e in export_events(path) if e.time < cut]
    replay = Replay(events)
    snaps = [Snapshot(at, replay.open_at(at)) for at in _month_starts(events[0].time, cut)]
    amounts = [
        KnownAmount(d.industry, float(d.amount), d.created_at) for d in replay.at(cut) if d.amount
    ]
    return train_deal_model(snaps, replay.outcomes(), amounts, cut), f"the CRM export ({path})"


async def register_champion(pool) -> DealModels:
    """Train a deal model, register it (the champion: the bench database has none) and load
    the models in charge from the registry, as the worker does."""
    start = time.perf_counter()
    trained, source = await asyncio.to_thread(train_model)
    version, role = await models.register(pool, KIND, trained.artifact, trained, T0)
    assert role == "champion", role
    async with pool.acquire() as conn:
        loaded = await load_deal_models(conn)
    print(
        f"deal champion {version.version} trained on {source} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return loaded


async def main(n: int, partitions: int, champion: bool) -> int:
    framework = load_framework()
    async with bench_pool(("deals", "deal_snapshots", "alert_outbox")) as pool:
        start = time.perf_counter()
        await pool.execute(FILL, TICK_AT.date(), T0, n, partitions, timeout=LONG)
        await pool.execute("ANALYZE deals", timeout=LONG)
        what = f"{n:,} open deals over {partitions} partitions"
        read = await filled(pool, what, start, READ, "open deal")

        async def rewrite() -> None:
            async with pool.acquire() as conn, conn.transaction():
                for sql in REWRITE:
                    await conn.execute(sql, TICK_AT, timeout=LONG)

        write = await timed("baseline rewrite: set-based UPDATE + snapshot", rewrite(), pool)

        async def ticked(at: datetime, deal_models: DealModels | None = None) -> None:
            bound = {"framework": framework, "deal_models": deal_models}
            projection = Projection.of(deals, apply_deal_batch, lambda: bound)
            aged = await tick_all(pool, projection, TOPIC, partitions, at)
            assert aged == n, f"{aged} deals aged of {n}"

        async def snapshotted(at: datetime) -> None:
            count = await pool.fetchval(
                "SELECT count(*) FROM deal_snapshots WHERE snapshot_date = $1",
                at.date(),
                timeout=LONG,
            )
            assert count == n, f"{count} snapshot rows for {n} deals"

        first = await timed("first tick (every deal's alert level is set)", ticked(TICK_AT), pool)
        tick = await timed(
            "the next day's tick, as the worker (the daily case)", ticked(TICK_AT + DAY), pool
        )
        await snapshotted(TICK_AT + DAY)
        learned = None
        if champion:
            in_charge = await register_champion(pool)
            learned = await timed(
                "the day after's tick with a deal champion",
                ticked(TICK_AT + 2 * DAY, in_charge),
                pool,
            )
            await snapshotted(TICK_AT + 2 * DAY)
            served = await pool.fetchval(
                "SELECT count(*) FROM deals WHERE prob_model_version = $1",
                in_charge.champion.version if in_charge.champion else None,
                timeout=LONG,
            )
            assert served == n, f"{served} deals scored by the champion of {n}"
    target = TARGET_SECONDS * n / 1_000_000
    print(f"first tick: {first.seconds:.1f} s (alert levels set for every deal)")
    met = True
    for label, timing in (("tick", tick), ("tick with a deal champion", learned)):
        if timing is None:
            continue
        seconds = timing.seconds
        met = met and seconds <= target
        print(
            f"{label}: {seconds:.1f} s for {n:,} deals ({n / seconds:,.0f} deals/s) = "
            f"{against(seconds, read, write)}; target {target:.0f} s: "
            f"{'met' if seconds <= target else 'MISSED'}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--no-champion", dest="champion", action="store_false")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.deals, args.partitions, args.champion)))
