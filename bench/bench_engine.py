"""Benchmark of the deal-scoring hot path: ``score_deal`` (health + probability) per deal.

    python bench/bench_engine.py [--deals N] [--repeat R] [--seed S]

Generates N varied DealFacts with a seeded ``random.Random`` (every stage, known and unknown
industries in mixed spellings, missing lead scores, activity and close dates, a few non-UTC
timestamps), then times one pass of ``score_deal`` over all of them with ``time.perf_counter``,
R times, keeping the best pass. The process is pinned to one CPU where the OS allows it.

Two baselines are timed in the same run over the same deals, so the ratio says how much work
scoring is relative to the cheapest things one could do per deal:

* touch:   a trivial function reading the same fields and doing the three date subtractions;
* replace: ``dataclasses.replace`` of each deal (building one frozen slots dataclass).

The target is <= 20 us per deal on one core (CPython 3.11).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.deal_events import OPEN_STAGES, DealStage
from worker.engine import DealFacts, Framework, load_framework, score_deal

TARGET_US = 20.0
NOW = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
INDUSTRIES = (
    None,
    "healthcare",
    "Healthcare",
    "Financial Services",
    "financial_services",
    "technology",
    "Retail",
    "manufacturing",  # no vertical: defaults
    "Education",
)
STAGES = tuple(DealStage)
STAGE_WEIGHTS = (25, 25, 20, 15, 8, 7)
CET = timezone(timedelta(hours=1))


def make_deals(n: int, seed: int) -> list[DealFacts]:
    rng = random.Random(seed)
    deals = []
    for _ in range(n):
        tz = CET if rng.random() < 0.1 else UTC
        age = rng.uniform(0, 240)
        created = (NOW - timedelta(days=age)).astimezone(tz)
        in_stage = rng.uniform(0, age)
        last = None if rng.random() < 0.1 else NOW - timedelta(days=rng.uniform(0, age))
        close = None if rng.random() < 0.15 else NOW.date() + timedelta(days=rng.randint(-60, 120))
        deals.append(
            DealFacts(
                stage=rng.choices(STAGES, STAGE_WEIGHTS)[0],
                amount=None if rng.random() < 0.2 else round(rng.uniform(1e3, 5e5), 2),
                industry=rng.choice(INDUSTRIES),
                lead_score=None if rng.random() < 0.2 else rng.randint(0, 100),
                interactions=rng.randint(0, 150),
                objections_handled=rng.randint(0, 8),
                has_champion=rng.random() < 0.5,
                budget_confirmed=rng.random() < 0.5,
                decision_maker_engaged=rng.random() < 0.5,
                competitors=rng.choice((0, 0, 0, 1, 1, 2, 3, 5)),
                last_activity_at=last,
                stage_entered_at=NOW - timedelta(days=in_stage),
                created_at=created,
                expected_close_date=close,
                close_date_pushes=rng.choice((0, 0, 0, 1, 2, 3, 6)),
            )
        )
    return deals


def touch(f: DealFacts, now: datetime, framework: Framework) -> float:
    """Baseline: read the fields score_deal reads, do its date arithmetic, nothing else."""
    x = (now - f.stage_entered_at).total_seconds() + (now - f.created_at).total_seconds()
    if f.last_activity_at is not None:
        x += (now - f.last_activity_at).total_seconds()
    if f.expected_close_date is not None:
        x += (now.date() - f.expected_close_date).days
    return (
        x
        + f.interactions
        + f.objections_handled
        + f.competitors
        + f.close_date_pushes
        + (f.lead_score or 0)
        + f.has_champion
        + f.budget_confirmed
        + f.decision_maker_engaged
        + len(f.stage)
        + len(f.industry or "")
    )


def replace(f: DealFacts, now: datetime, framework: Framework) -> DealFacts:
    """Baseline: build one frozen slots dataclass per deal."""
    return dataclasses.replace(f, interactions=f.interactions + 1)


def best_pass_us(
    fn: Callable[[DealFacts, datetime, Framework], object],
    deals: list[DealFacts],
    framework: Framework,
    repeat: int,
) -> float:
    """Best of ``repeat`` passes, in microseconds per deal."""
    for deal in deals[:1000]:  # warm-up
        fn(deal, NOW, framework)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for deal in deals:
            fn(deal, NOW, framework)
        best = min(best, time.perf_counter() - start)
    return best / len(deals) * 1e6


def pin_to_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000, help="deals to generate")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (best is kept)")
    parser.add_argument("--seed", type=int, default=20251124, help="random seed")
    args = parser.parse_args(argv)
    if args.deals < 1 or args.repeat < 1:
        parser.error("--deals and --repeat must be at least 1")

    pinning = pin_to_one_cpu()
    framework = load_framework()
    deals = make_deals(args.deals, args.seed)
    stages = {s: 0 for s in STAGES}
    for deal in deals:
        stages[deal.stage] += 1

    score_us = best_pass_us(score_deal, deals, framework, args.repeat)
    open_deals = [d for d in deals if d.stage in OPEN_STAGES]
    open_us = best_pass_us(score_deal, open_deals, framework, args.repeat)
    touch_us = best_pass_us(touch, deals, framework, args.repeat)
    replace_us = best_pass_us(replace, deals, framework, args.repeat)

    print(f"python {platform.python_version()} ({platform.python_implementation()}), {pinning}")
    print(f"framework {framework.version}; {args.deals:,} deals, seed {args.seed}, ", end="")
    print(f"best of {args.repeat} passes")
    print("stages: " + ", ".join(f"{s.value} {n:,}" for s, n in stages.items()))
    print(f"score_deal (health + probability): {score_us:8.2f} us/deal")
    print(f"  open deals only ({len(open_deals):,}):    {open_us:8.2f} us/deal")
    print(f"baseline touch (fields + dates):   {touch_us:8.2f} us/deal  ", end="")
    print(f"-> score_deal is {score_us / touch_us:.1f}x")
    print(f"baseline dataclasses.replace:      {replace_us:8.2f} us/deal  ", end="")
    print(f"-> score_deal is {score_us / replace_us:.1f}x")
    met = max(score_us, open_us) <= TARGET_US
    print(f"target <= {TARGET_US:g} us/deal: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
