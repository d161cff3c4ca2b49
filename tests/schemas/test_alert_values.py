"""An alert's money is written to the cent whatever its origin: the amount fresh from an event
(``27200``) and read back from the table (``27200.00``) give the same published alert, so a
replay batched differently (after a crash, a rebalance) republishes it byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from schemas.alerts import AccountAlert, AlertAdapter, DealAlert

CAUSE = {
    "event_id": "e-1",
    "event_type": "deal.updated",
    "event_time": datetime(2026, 1, 1, tzinfo=UTC),
}


def deal_alert(value: Decimal | None) -> DealAlert:
    return DealAlert(
        alert_id="a-1",
        kind="at_risk",
        level="at_risk",
        deal_id="d-1",
        value=value,
        stage="proposal",
        health_score=55,
        health_category="warning",
        close_probability=40.0,
        risk_factors=[],
        reasons=["Health is warning (55/100)"],
        previous={"level": "none"},
        caused_by=CAUSE,
        occurred_at=CAUSE["event_time"],
        framework_version="v1",
    )


def test_a_deal_alert_value_is_to_the_cent_whatever_its_origin():
    fresh, stored = deal_alert(Decimal("27200")), deal_alert(Decimal("27200.00"))
    assert fresh.model_dump_json() == stored.model_dump_json()
    assert '"value":"27200.00"' in fresh.model_dump_json()
    assert deal_alert(None).value is None
    assert AlertAdapter.validate_json(fresh.model_dump_json()) == stored


def test_an_account_alert_arr_is_to_the_cent():
    alert = AccountAlert(
        entity="account",
        alert_id="a-2",
        kind="at_risk",
        level="at_risk",
        account_id="acc-1",
        arr=Decimal("120000"),
        churn_risk=80,
        churn_level="high",
        reasons=[],
        drivers=[],
        previous={"level": "none"},
        caused_by=CAUSE,
        occurred_at=CAUSE["event_time"],
        framework_version="v1",
    )
    assert alert.arr == Decimal("120000.00") and str(alert.arr) == "120000.00"
