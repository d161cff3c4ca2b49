"""Benchmark: one clock tick over the accounts, heuristic and with a churn champion, against the
real local PostgreSQL.

    eval "$(bash scripts/services.sh env)"
    .venv/bin/python bench/bench_account_tick.py [--accounts N] [--partitions P] [--no-champion]

Creates a fresh database (dropped afterwards) and fills it with N accounts: the public bank
churn sample's 10,000 customers merged from their account events (as the model tests load
them) and scored, then copied set-based (new ids, spread over P partitions) up to N. A first
tick sets every account's alert level; the next day's tick, the daily case, is timed, applied
to every partition exactly as the worker does (one batch of ticks through
``worker.store.batches.apply_batch`` with the account projection: partitions in parallel, each
rescored in pages with alert transitions and the outbox).

Then the same with a churn champion: the churn model trained on the sample's outcomes (as
``tests/models/test_churn.py`` trains it), registered in the bench database and loaded from it
as the worker loads its champion; a first tick with it (new scores: alert levels move) and the
day after's tick are timed: every account also gets the model's probability and its factors in
words (the occlusions). The figures are printed against two baselines measured in the same run
on the same rows:

* read: fetching every account's scoring inputs (what any rescoring must at least read);
* rewrite: one set-based UPDATE of every account's score columns (what any rescoring must at
  least write), without Python in between.

The load average before each phase is printed, and the bench process's CPU time in it (the
Python side: decoding, scoring, encoding; PostgreSQL's is not counted): on a machine shared
with other work, compare the ratios and the CPU. Target: the deals' per-row budget (issue 15:
1,000,000 deals in 60 s, 60 us a row), i.e. 6 s per 100,000 accounts, for the daily tick with
and without a champion. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ticking import LONG, Timing, against, bench_pool, filled, tick_all, timed
from worker.domain.account import AccountOutcome, AccountState, apply_account_event, score_accounts
from worker.domain.account_batch import apply_account_batch
from worker.engine import Framework, load_framework
from worker.models.churn import KIND, LoadedChurnModel, TrainingRow, train
from worker.store import accounts, models
from worker.store.batches import Projection
from worker.store.upsert import rows_json
from worker.tasks.champion import load_churn
from worker.testdata.bank_churn import bank_churn_dir, events

TARGET_US_PER_ACCOUNT = 60.0  # the deals' budget: 1,000,000 in 60 s
TOPIC = "bench.account-events"
TICK_AT = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)

# the sample's accounts copied (new ids, partitions spread) up to N rows
COPY = f"""
INSERT INTO accounts ({", ".join(accounts.COLUMNS)})
SELECT {
    ", ".join(
        "a.account_id || '-' || k"
        if c == "account_id"
        else "(row_number() OVER () % $2)::int"
        if c == "source_partition"
        else f"a.{c}"
        for c in accounts.COLUMNS
    )
}
FROM accounts AS a CROSS JOIN generate_series(1, $1) AS k
ORDER BY k, a.account_id
LIMIT $3
"""
READ = f"SELECT {accounts.LOAD_COLUMNS}, scored_at FROM accounts"
REWRITE = """
UPDATE accounts SET churn_risk = churn_risk, churn_level = churn_level,
    churn_drivers = churn_drivers, expansion_score = expansion_score,
    expansion_motion = expansion_motion, expansion_drivers = expansion_drivers,
    score_details = score_details, churn_model_version = churn_model_version,
    alert_level = alert_level, scored_at = least(scored_at, $1)
"""


def load_bank() -> tuple[dict[str, AccountState], list[AccountOutcome]]:
    """The sample's accounts merged event by event (``tests/models/test_churn.fold_bank``)."""
    directory = bank_churn_dir()
    if directory is None:
        sys.exit("the bank churn sample was not found (set REVINTEL_BANK_CHURN_DATA)")
    states: dict[str, AccountState] = {}
    outcomes: list[AccountOutcome] = []
    for e in events(directory):
        before = states.get(e.subject)
        after = apply_account_event(before, e)
        assert after is not None
        if after.outcome is not None and e.type.endswith(("churned", "renewed")):
            assert before is not None
            outcomes.append(AccountOutcome(e.subject, e.id, after.outcome, e.time, before))
        states[e.subject] = after
    return states, outcomes


async def fill(pool, framework: Framework, n: int, partitions: int) -> list[AccountOutcome]:
    """The sample's accounts scored as their events left them, copied up to ``n`` rows."""
    states, outcomes = load_bank()
    base = list(states.values())
    scores = score_accounts([(s, s.last_event_time) for s in base], framework, None)
    rows = [accounts.account_row(s, sc) for s, sc in zip(base, scores, strict=True)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(accounts.UPSERT_ACCOUNTS, rows_json(rows), timeout=LONG)
        copies = -(-n // len(base))
        await conn.execute(COPY, copies, partitions, n, timeout=LONG)
        await conn.execute("DELETE FROM accounts WHERE source_partition IS NULL", timeout=LONG)
    await pool.execute("ANALYZE accounts", timeout=LONG)
    return outcomes


async def register_champion(pool, outcomes: list[AccountOutcome]) -> LoadedChurnModel:
    """Train the churn model on the sample's outcomes, register it (the champion: the bench
    database has none) and load it from the registry, as the worker does."""
    start = time.perf_counter()
    rows = [TrainingRow(o.features(), o.churned, o.occurred_at) for o in outcomes]
    trained = await asyncio.to_thread(train, rows)
    version, role = await models.register(pool, KIND, trained.model, trained, TICK_AT)
    assert role == "champion", role
    async with pool.acquire() as conn:
        mv = await models.champion(conn, KIND)
    assert mv is not None
    loaded = load_churn(mv)
    print(
        f"churn champion {version.version} ({trained.model.family}+"
        f"{trained.model.calibrator.method}) trained on {len(rows):,} outcomes "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return loaded


async def main(n: int, partitions: int, champion: bool) -> int:
    framework = load_framework()
    async with bench_pool(("accounts", "alert_outbox")) as pool:
        start = time.perf_counter()
        outcomes = await fill(pool, framework, n, partitions)
        what = f"{n:,} accounts (the bank sample's 10,000, copied) over {partitions} partitions"
        read = await filled(pool, what, start, READ, "account")
        write = await timed(
            "baseline rewrite: set-based UPDATE of the scores",
            pool.execute(REWRITE, TICK_AT, timeout=LONG),
            pool,
        )

        async def ticked(at: datetime, churn_model: LoadedChurnModel | None = None) -> None:
            bound = {"framework": framework, "churn_model": churn_model}
            projection = Projection.of(accounts, apply_account_batch, lambda: bound)
            aged = await tick_all(pool, projection, TOPIC, partitions, at)
            assert aged == n, f"{aged} accounts aged of {n}"

        figures: dict[str, Timing] = {}
        await timed("first tick (every account's alert level is set)", ticked(TICK_AT), pool)
        figures["tick"] = await timed(
            "the next day's tick, as the worker (the daily case)", ticked(TICK_AT + DAY), pool
        )
        if champion:
            in_charge = await register_champion(pool, outcomes)
            await timed(
                "first tick with the churn champion (levels move)",
                ticked(TICK_AT + 2 * DAY, in_charge),
                pool,
            )
            figures["tick with a churn champion"] = await timed(
                "the day after's tick with the churn champion",
                ticked(TICK_AT + 3 * DAY, in_charge),
                pool,
            )
            served = await pool.fetchval(
                "SELECT count(*) FROM accounts WHERE churn_model_version = $1",
                in_charge.version,
                timeout=LONG,
            )
            assert served == n, f"{served} accounts scored by the champion of {n}"
    target = TARGET_US_PER_ACCOUNT * n / 1e6
    met = True
    for label, timing in figures.items():
        seconds, cpu = timing.seconds, timing.python
        met = met and seconds <= target
        print(
            f"{label}: {seconds:.2f} s for {n:,} accounts ({1e6 * seconds / n:,.0f} us each, "
            f"{1e6 * cpu / n:,.0f} us of the bench's CPU) = {against(seconds, read, write)}; "
            f"target {target:.1f} s "
            f"({TARGET_US_PER_ACCOUNT:.0f} us each): {'met' if seconds <= target else 'MISSED'}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--no-champion", dest="champion", action="store_false")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.accounts, args.partitions, args.champion)))
