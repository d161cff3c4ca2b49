"""The learned deal model on a history whose signal is known: owner A's deals are won at the
end of the quarter, owner B's are lost the month after they start. Also: training never looks
past its cut."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.deal_events import DealEventAdapter
from worker.backtest.replay import Replay
from worker.models.deal import (
    LOST,
    NEITHER,
    WON,
    Snapshot,
    enough_outcomes,
    fit_deal_model,
    training_set,
)
from worker.models.deal_features import FEATURES, build_history, window_of

START = datetime(2016, 1, 1, tzinfo=UTC)


def _month_start(i: int) -> datetime:
    return datetime(2016 + i // 12, i % 12 + 1, 1, tzinfo=UTC)


def _events(n_months: int = 14, per_month: int = 24) -> list:
    events = []
    for m in range(n_months):
        for j in range(per_month):
            owner = "A" if j % 2 == 0 else "B"
            deal = f"d{m}-{j}"
            created = _month_start(m) + timedelta(days=2, hours=j)
            if owner == "A":  # won on the 20th of the quarter's last month
                last = (m // 3) * 3 + 2 + (3 if m % 3 == 2 else 0)
                closed, kind = _month_start(last) + timedelta(days=19), "closed_won"
            else:  # lost on the 10th of the next month
                closed, kind = _month_start(m + 1) + timedelta(days=9), "closed_lost"
            data = {"name": deal, "owner": owner, "amount": 1000, "stage": "qualification"}
            events.append(_event(deal, "created", created, data))
            events.append(_event(deal, kind, closed, {}))
    return events


def _event(deal: str, kind: str, at: datetime, data: dict):
    return DealEventAdapter.validate_python(
        {
            "id": f"{deal}-{kind}",
            "source": "test",
            "type": f"deal.{kind}",
            "time": at,
            "subject": deal,
            "data": data,
        }
    )


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(_events())


def _training(replay: Replay, cut: datetime):
    outcomes = replay.outcomes()
    history = build_history(outcomes.values(), [], cut)
    snaps = [Snapshot(_month_start(i), replay.open_at(_month_start(i))) for i in range(12)]
    return training_set(snaps, outcomes, history, cut), history, outcomes


def test_rows_only_for_months_ended_by_the_cut(replay):
    cut = _month_start(9)
    data, _, outcomes = _training(replay, cut)
    k = data.features[:, FEATURES.index("month_ahead")].astype(int)
    for taken, ahead in zip(data.taken_at, k, strict=True):
        at = datetime.fromtimestamp(taken, UTC)
        assert window_of(at, int(ahead))[1] <= cut
    # outcomes after the cut changed at will: the same rows, the same labels
    flipped = {
        i: replace(o, won=not o.won) if o.closed_at >= cut else o for i, o in outcomes.items()
    }
    history = build_history(flipped.values(), [], cut)
    snaps = [Snapshot(_month_start(i), replay.open_at(_month_start(i))) for i in range(12)]
    again = training_set(snaps, flipped, history, cut)
    assert np.array_equal(again.labels, data.labels)
    assert np.array_equal(again.features, data.features)


def test_labels_say_which_month_the_deal_closed_in(replay):
    data, _, _ = _training(replay, _month_start(9))
    feb = _month_start(1).timestamp()
    a_rows = (data.deal_ids == "d0-0") & (data.taken_at == feb)
    # d0-0 (owner A, created 3 January) is won on 20 March; seen on 1 February, its months
    # February .. July (the last to end by the cut) say: neither, won, then neither (closed)
    assert list(data.labels[a_rows]) == [NEITHER, WON, NEITHER, NEITHER, NEITHER, NEITHER]
    b_rows = (data.deal_ids == "d0-1") & (data.taken_at == feb)
    assert list(data.labels[b_rows]) == [LOST] + [NEITHER] * 5  # lost 10 February
    # not yet created on 1 January: no row from that snapshot
    assert not ((data.deal_ids == "d0-0") & (data.taken_at == _month_start(0).timestamp())).any()
    assert enough_outcomes(data, 10, 10) and not enough_outcomes(data, 10_000, 1)


def test_the_model_learns_who_wins_and_when(replay):
    cut = _month_start(12)
    data, history, _ = _training(replay, cut)
    model = fit_deal_model(data, history, months=4)
    snap = replay.open_at(cut)
    a = [d for d in snap if d.owner == "A"]
    b = [d for d in snap if d.owner == "B"]
    assert a and b
    pa, pb = model.predict(a, cut), model.predict(b, cut)
    assert pa.close_probability.min() > 0.8
    assert pb.close_probability.max() < 0.2
    # A's wins land at the quarter's end (March 2017 = month 2 from January); B's losses next
    assert (pa.win.argmax(axis=1) == 2).all()
    assert (pb.loss.argmax(axis=1) <= 1).all()
