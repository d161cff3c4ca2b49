from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.engine import ChurnInput, Framework, score_churn
from worker.engine.framework import default_framework

from ._determinism import churn_scores, here, in_another_process
from ._errors import one_validation_error
from ._helpers import round_half_up


def test_worked_example(fw: Framework) -> None:
    cp = fw.defaults.params.churn
    account = ChurnInput(
        logins=[200, 180, 120, 100],
        active_seats=[40, 40, 36, 30],
        licensed_seats=50,
        open_tickets=3,
        max_ticket_severity="high",
        escalations=1,
        failed_payments=1,
        days_overdue=10,
        downgrade_requests=0,
        nps=5,
        csat=3.0,
        renewal_date=date(2025, 7, 1),
    )
    result = score_churn(account, fw, as_of=date(2025, 6, 1))

    # usage: the worst of login trend, seat trend, utilisation
    login_decline = 1 - ((120 + 100) / 2) / ((200 + 180) / 2)
    seat_decline = 1 - ((36 + 30) / 2) / ((40 + 40) / 2)
    full = cp.usage.full_risk_decline
    healthy = cp.usage.healthy_utilisation
    utilisation_risk = max(0.0, 100 * (healthy - 30 / 50) / healthy)
    usage = max(
        min(100, 100 * login_decline / full), min(100, 100 * seat_decline / full), utilisation_risk
    )
    s = cp.support
    support = min(
        100,
        min(s.max_ticket_points, s.ticket_points * 3)
        + s.severity_points.high
        + min(s.max_escalation_points, s.escalation_points * 1),
    )
    f = cp.financial
    financial = min(
        100, f.failed_payment_points * 1 + min(f.max_overdue_points, f.overdue_day_points * 10)
    )
    sentiment = (100 * (10 - 5) / 10 + 100 * (5 - 3.0) / 4) / 2
    w = cp.weights
    weighted = (
        w.usage * usage + w.support * support + w.financial * financial + w.sentiment * sentiment
    )
    base = max(weighted, cp.worst_area_floor * max(usage, support, financial, sentiment))
    days = 30
    proximity = 100 * (cp.renewal.horizon_days - days) / cp.renewal.horizon_days
    multiplier = 1 + cp.renewal.renewal_max_amplification * proximity / 100
    expected = round_half_up(min(100, base * multiplier))

    b = result.breakdown
    assert b.usage.risk == pytest.approx(usage)
    assert b.support.risk == pytest.approx(support)
    assert b.financial.risk == pytest.approx(financial)
    assert b.sentiment.risk == pytest.approx(sentiment)
    assert b.weighted == pytest.approx(weighted)
    assert b.base == pytest.approx(base)
    assert b.days_to_renewal == days
    assert b.renewal_multiplier == pytest.approx(multiplier)
    assert result.score == expected
    lv = cp.levels
    assert result.level == (
        "critical"
        if expected >= lv.critical_min
        else "high"
        if expected >= lv.high_min
        else "medium"
        if expected >= lv.medium_min
        else "low"
    )
    assert "Renewal in 30 days" in result.drivers
    assert "1 failed payment" in result.drivers
    assert "Detractor: would recommend 5/10" in result.drivers
    assert "Logins down 42% (last 2 periods against the 2 before)" in result.drivers
    assert result.framework_version == fw.version


def test_no_data_counts_as_missing_risk(fw: Framework) -> None:
    cp = fw.defaults.params.churn
    result = score_churn(ChurnInput(), fw)
    b = result.breakdown
    assert not b.usage.has_data and not b.sentiment.has_data
    assert b.usage.risk == b.sentiment.risk == cp.missing_data_risk
    assert b.support.risk == b.financial.risk == 0
    weighted = (cp.weights.usage + cp.weights.sentiment) * cp.missing_data_risk
    expected = max(weighted, cp.worst_area_floor * cp.missing_data_risk)
    assert result.score == round_half_up(expected)
    assert result.level == "low"
    assert "No usage data" in result.drivers


def test_usage_stopping_entirely_is_full_usage_risk(fw: Framework) -> None:
    result = score_churn(ChurnInput(logins=[50, 40, 0, 0]), fw)
    assert result.breakdown.usage.risk == 100
    assert "No logins in the last 2 periods" in result.drivers


def test_a_single_bad_area_is_enough(fw: Framework) -> None:
    cp = fw.defaults.params.churn
    result = score_churn(
        ChurnInput(logins=[10, 10], nps=9, failed_payments=4, days_to_renewal=365), fw
    )
    assert result.breakdown.financial.risk == 100
    assert result.breakdown.base == pytest.approx(cp.worst_area_floor * 100)
    assert result.score == round_half_up(cp.worst_area_floor * 100)


def test_renewal(fw: Framework) -> None:
    cp = fw.defaults.params.churn
    far = score_churn(ChurnInput(nps=3, days_to_renewal=400), fw)
    near = score_churn(ChurnInput(nps=3, days_to_renewal=10), fw)
    past = score_churn(ChurnInput(nps=3, days_to_renewal=-5), fw)
    assert far.breakdown.renewal_proximity == 0
    assert near.breakdown.renewal_proximity == pytest.approx(
        100 * (cp.renewal.horizon_days - 10) / cp.renewal.horizon_days
    )
    assert past.breakdown.renewal_proximity == 100
    assert far.score <= near.score <= past.score
    assert "Renewal date passed 5 days ago" in past.drivers
    given_as_of = score_churn(
        ChurnInput(nps=3, renewal_date=date(2025, 1, 11)), fw, date(2025, 1, 1)
    )
    in_input = score_churn(
        ChurnInput(nps=3, renewal_date=date(2025, 1, 11), as_of=date(2025, 1, 1)), fw
    )
    assert given_as_of.score == in_input.score == near.score
    with pytest.raises(ValueError, match=r"renewal_date needs as_of \(the day"):
        score_churn(ChurnInput(renewal_date=date(2025, 1, 11)), fw)


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"nps": 11}, "nps", "Input should be less than or equal to 10"),
        ({"nps": -1}, "nps", "Input should be greater than or equal to 0"),
        ({"csat": 0}, "csat", "Input should be greater than or equal to 1"),
        (
            {"max_ticket_severity": "catastrophic"},
            "max_ticket_severity",
            "Input should be 'none', 'low', 'medium', 'high' or 'critical'",
        ),
        ({"failed_payments": -1}, "failed_payments", "Input should be greater than or equal to 0"),
        ({"logins": [1, -2]}, None, "Value error, usage counts must not be negative"),
        (
            {"renewal_date": "2025-01-01", "days_to_renewal": 3},
            None,
            "Value error, give either renewal_date or days_to_renewal, not both",
        ),
    ],
)
def test_input_validation(bad: dict, field: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=one_validation_error("ChurnInput", message, field)):
        ChurnInput.model_validate(bad)


accounts = st.builds(
    ChurnInput,
    industry=st.sampled_from([None, "retail", "healthcare"]),
    logins=st.lists(st.floats(0, 1e4), max_size=12),
    active_seats=st.lists(st.integers(0, 500).map(float), max_size=12),
    licensed_seats=st.none() | st.integers(1, 500),
    open_tickets=st.integers(0, 50),
    max_ticket_severity=st.sampled_from(["none", "low", "medium", "high", "critical"]),
    escalations=st.integers(0, 10),
    failed_payments=st.integers(0, 10),
    days_overdue=st.integers(0, 400),
    downgrade_requests=st.integers(0, 5),
    nps=st.none() | st.integers(0, 10),
    csat=st.none() | st.floats(1, 5),
    days_to_renewal=st.none() | st.integers(-400, 800),
)


@settings(max_examples=300, deadline=None)
@given(accounts)
def test_bounds(account: ChurnInput) -> None:
    fw = default_framework()
    result = score_churn(account, fw)
    assert 0 <= result.score <= 100
    for area in ("usage", "support", "financial", "sentiment"):
        assert 0 <= getattr(result.breakdown, area).risk <= 100
    assert result.level in ("low", "medium", "high", "critical")


def test_deterministic_across_processes() -> None:
    """Another interpreter (another hash seed) gives the same scores and drivers, in order."""
    assert in_another_process(churn_scores) == here(churn_scores)


def test_deterministic_pinned_score(fw: Framework) -> None:
    account = ChurnInput(
        logins=[300, 250, 120, 60],
        active_seats=[40, 38, 30, 20],
        licensed_seats=50,
        open_tickets=3,
        max_ticket_severity="high",
        escalations=1,
        failed_payments=2,
        days_overdue=20,
        nps=4,
        csat=2.5,
        days_to_renewal=45,
    )
    result = score_churn(account, fw)
    assert (result.score, result.level) == (97, "critical")
    assert result.drivers == (
        "Logins down 67% (last 2 periods against the 2 before)",
        "Active seats down 36% (last 2 periods against the 2 before)",
        "Renewal in 45 days",
        "Only 40% of licensed seats active",
        "2 failed payments",
        "CSAT 2.5/5",
        "Detractor: would recommend 4/10",
        "Worst open ticket is high severity",
        "Invoice 20 days overdue",
        "1 escalated ticket",
    )


@settings(max_examples=300, deadline=None)
@given(accounts, st.integers(1, 10))
def test_more_failed_payments_never_lower_churn_risk(account: ChurnInput, more: int) -> None:
    fw = default_framework()
    worse = account.model_copy(update={"failed_payments": account.failed_payments + more})
    assert score_churn(worse, fw).score >= score_churn(account, fw).score
