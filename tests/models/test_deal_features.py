"""Deal features: what a deal looked like at a moment, and the history before a cut."""

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas.deal_events import DealStage
from worker.domain.deal import DealState
from worker.models.deal_features import (
    BASE_FEATURES,
    HORIZON_FEATURES,
    SMOOTHING,
    ClosedDeal,
    base_row,
    build_history,
    horizon_row,
    window_of,
)

NOW = datetime(2017, 6, 1, 12, tzinfo=UTC)


def _state(**changes) -> DealState:
    base = dict(
        deal_id="d1",
        owner="Ana",
        company="Acme",
        industry="retail",
        amount=2000,
        stage=DealStage.qualification,
        expected_close_date=date(2017, 5, 22),
        close_date_pushes=2,
        created_at=NOW - timedelta(days=40),
        stage_entered_at=NOW - timedelta(days=25),
        last_activity_at=NOW - timedelta(days=10),
        last_event_id="e",
        last_event_time=NOW - timedelta(days=10),
    )
    return DealState(**{**base, **changes})


def _closed(i: int, won: bool, owner: str = "Ana", at: datetime = NOW - timedelta(days=5)):
    return ClosedDeal(f"c{i}", owner, "Acme", "retail", won, at, 1000.0)


def test_base_row_by_hand():
    closed = [_closed(i, won=i < 3) for i in range(4)]  # Ana: 3 of 4 won
    later = _closed(9, won=False, at=NOW + timedelta(days=1))  # after the cut: not counted
    history = build_history([*closed, later], [("retail", 1000.0), ("retail", 3000.0)], NOW)
    row = dict(zip(BASE_FEATURES, base_row(_state(), NOW, history), strict=True))
    assert history.base_rate == pytest.approx((3 + 1) / (4 + 2))
    assert row["stage_qualification"] == 1.0 and row["stage_prospecting"] == 0.0
    assert row["days_in_stage"] == pytest.approx(25.0)
    assert row["age_days"] == pytest.approx(40.0)
    assert row["days_since_activity"] == pytest.approx(10.0)
    assert row["days_overdue"] == 10.0 and row["days_to_close_date"] == 0.0
    assert row["close_date_pushes"] == 2.0
    assert row["log_amount_vs_typical"] == pytest.approx(0.0)  # 2000 is the median of 1000, 3000
    assert row["lead_score"] == -1.0  # unknown
    expected = (3 + SMOOTHING * history.base_rate) / (4 + SMOOTHING)
    assert row["owner_win_rate"] == pytest.approx(expected)
    assert row["owner_closed_log"] == pytest.approx(1.6094379)  # log1p(4)


def test_an_unknown_owner_gets_the_base_rate_and_no_activity_counts_from_creation():
    history = build_history([_closed(1, won=True)], [], NOW)
    state = _state(owner="Newcomer", last_activity_at=None, expected_close_date=date(2017, 6, 11))
    row = dict(zip(BASE_FEATURES, base_row(state, NOW, history), strict=True))
    assert row["owner_win_rate"] == pytest.approx(history.base_rate)
    assert row["owner_closed_log"] == 0.0
    assert row["days_since_activity"] == pytest.approx(40.0)
    assert (row["days_overdue"], row["days_to_close_date"]) == (0.0, 10.0)


def test_horizon_rows_carry_the_quarter_and_the_window():
    mid_may = datetime(2017, 5, 16, tzinfo=UTC)
    rows = [dict(zip(HORIZON_FEATURES, horizon_row(mid_may, k), strict=True)) for k in range(3)]
    assert [r["month_of_quarter"] for r in rows] == [1.0, 2.0, 0.0]  # May, June, July
    assert rows[0]["window_share"] == pytest.approx(16 / 31)  # 16..31 May still ahead
    assert rows[1]["window_share"] == rows[2]["window_share"] == 1.0
    assert window_of(mid_may, 0) == (mid_may, datetime(2017, 6, 1, tzinfo=UTC))
    assert window_of(mid_may, 1) == (
        datetime(2017, 6, 1, tzinfo=UTC),
        datetime(2017, 7, 1, tzinfo=UTC),
    )
