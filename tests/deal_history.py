"""A deal history whose signal is known, for the deal model's tests: 40 days after creation
Acme's deals are won, Bust's lost, and Mid's (half of all) won or lost in turn; the owner and
everything else are alike. The typical deal is Mid's, so occlusion tells Acme's and Bust's
accounts apart from it. Deals created in the last months stay open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.deal_events import DealEventAdapter
from worker.backtest.replay import Replay
from worker.models.deal import Snapshot
from worker.models.deal_training import (
    DealTrainParams,
    KnownAmount,
    TrainedDeal,
    train_deal_model,
)

MONTHS = 12
CUT = datetime(2017, 1, 1, tzinfo=UTC)
PARAMS = DealTrainParams(min_won=20, min_lost=20)
COMPANIES = ("Acme", "Bust", "Mid", "Mid")


def month_start(i: int) -> datetime:
    return datetime(2016 + i // 12, i % 12 + 1, 1, tzinfo=UTC)


def _event(deal: str, kind: str, at: datetime, data: dict):
    return DealEventAdapter.validate_python(
        {"id": f"{deal}-{kind}", "source": "test", "type": f"deal.{kind}", "time": at}
        | {"subject": deal, "data": data}
    )


def history_events(per_month: int = 32) -> list:
    events = []
    for m in range(MONTHS):
        for j in range(per_month):
            company = COMPANIES[j % 4]
            deal = f"d{m}-{j}"
            created = month_start(m) + timedelta(days=2, hours=j)
            data = {"name": deal, "owner": f"o{j % 3}", "company": company, "amount": 1000}
            events.append(_event(deal, "created", created, {**data, "stage": "qualification"}))
            won = company == "Acme" or (company == "Mid" and j % 4 == 2)
            kind = "closed_won" if won else "closed_lost"
            events.append(_event(deal, kind, created + timedelta(days=40), {}))
    return events


def train(replay: Replay, params: DealTrainParams = PARAMS, cut: datetime = CUT) -> TrainedDeal:
    """The deal model from the month-start snapshots of ``replay`` up to ``cut``."""
    snaps = [Snapshot(month_start(i), replay.open_at(month_start(i))) for i in range(MONTHS)]
    amounts = [KnownAmount(d.industry, 1000.0, d.created_at) for d in replay.at(cut)]
    return train_deal_model(snaps, replay.outcomes(), amounts, cut, params)
