"""The deal model as the worker serves it, on the public CRM export: its held-out figures and
the cost of scoring a batch with it.

    python bench/bench_deal_model.py [PATH] [--cut 2017-09-01] [--repeat R]

1. The export's events before ``--cut`` are folded with the worker's merge
   (``worker.backtest.replay``); the open deals of each month start are the snapshots a worker
   with daily ticks would have stored. ``worker.models.deal_training.train_deal_model`` trains
   on them as ``revintel train deal`` does (cut = ``--cut``): the held-out figures (the last
   month start, scored by a model fitted before it, on its deals closed by the cut) are
   printed beside the framework heuristic's on the same deals (``served then`` in the
   registry, when the heuristic was in charge).
2. ``worker.models.deal_scoring.score_open`` (champion with explanations, and champion plus a
   challenger) times batches of 1, 50, 500 and 5,000 open deals at the cut (best of R), beside
   the framework's ``score_deal`` over the same deals in the same run (the baseline).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.backtest.replay import Replay
from worker.engine import DealFacts, default_framework, score_deal
from worker.models.deal import Snapshot
from worker.models.deal_scoring import DealModels, LoadedDealModel, score_open
from worker.models.deal_training import KnownAmount, train_deal_model
from worker.models.metrics import score_probabilities
from worker.testdata.crm_export import crm_data_dir, export_events


def _best(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _month_starts(first: datetime, cut: datetime) -> list[datetime]:
    out, y, m = [], first.year, first.month
    while datetime(y, m, 1, tzinfo=UTC) <= cut:
        out.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=crm_data_dir())
    parser.add_argument("--cut", default="2017-09-01")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.path is None:
        sys.exit("no CRM export: pass its directory or set REVINTEL_CRM_DATA")
    cut = datetime.fromisoformat(args.cut).replace(tzinfo=UTC)
    events = [e for e in export_events(args.path) if e.time < cut]
    replay = Replay(events)
    snaps = [Snapshot(at, replay.open_at(at)) for at in _month_starts(events[0].time, cut)]
    amounts = [
        KnownAmount(d.industry, float(d.amount), d.created_at) for d in replay.at(cut) if d.amount
    ]
    outcomes = replay.outcomes()
    started = time.perf_counter()
    trained = train_deal_model(snaps, outcomes, amounts, cut)
    print(f"trained in {time.perf_counter() - started:.1f} s: {trained.samples}")
    test = trained.metrics["split"]["test"]
    held = next(s for s in snaps if s.at.isoformat() == test["snapshot"])
    closed = [
        d for d in held.deals if d.deal_id in outcomes and outcomes[d.deal_id].closed_at < cut
    ]
    fw = default_framework()
    heuristic = [
        score_deal(DealFacts.from_record(d), held.at, fw).probability.probability / 100
        for d in closed
    ]
    won = [outcomes[d.deal_id].won for d in closed]
    rows = {"learned": trained.metrics["test"], "heuristic": score_probabilities(heuristic, won)}
    day, n = test["snapshot"][:10], test["closed"]
    print(f"held out: the snapshot of {day}, {n} deals closed by the cut")
    head = ("Brier", "base", "logloss", "AUC", "calib", "mean p", "won")
    print(f"{'':10} " + " ".join(f"{h:>7}" for h in head))
    for name, f in rows.items():
        f = f if isinstance(f, dict) else f.model_dump()
        print(
            f"{name:10} {f['brier']:7.4f} {f['base_rate_brier']:7.4f} {f['log_loss']:7.4f} "
            f"{f['auc']:7.3f} {f['calibration_error']:7.3f} {f['mean_prediction']:7.3f} "
            f"{f['positive_rate']:7.3f}"
        )

    champion = LoadedDealModel("champion", trained.artifact)
    challenger = LoadedDealModel("challenger", trained.artifact)
    open_now = replay.open_at(cut)
    print(f"\nscoring open deals at {cut:%Y-%m-%d} (best of {args.repeat}):")
    print(f"{'deals':>6} {'heuristic':>10} {'champion':>10} {'+challenger':>12} {'per deal':>9}")
    for n in (1, 50, 500, 5000):
        deals = [open_now[i % len(open_now)] for i in range(n)]
        moments = [cut] * n
        base = _best(
            lambda d=deals: [score_deal(DealFacts.from_record(x), cut, fw) for x in d], args.repeat
        )
        one = _best(lambda d=deals, m=moments: score_open(DealModels(champion), d, m), args.repeat)
        two = _best(
            lambda d=deals, m=moments: score_open(DealModels(champion, challenger), d, m),
            args.repeat,
        )
        print(
            f"{n:6} {base * 1e3:8.1f} ms {one * 1e3:8.1f} ms {two * 1e3:10.1f} ms "
            f"{two / n * 1e3:7.2f} ms  ({two / base:.0f}x the heuristic)"
        )


if __name__ == "__main__":
    main()
