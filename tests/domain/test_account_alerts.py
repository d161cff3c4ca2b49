"""Account alerts: the pure evaluator (transitions, hysteresis, renewal rule, reasons) and the
account batch / tick that raise them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.alerts import AlertAdapter
from schemas.clock import make_tick
from tests.account_factories import FW, T0, created, ev, incoming, ref, usage
from worker.domain.account_alerts import (
    AccountAlertRules,
    AccountTrack,
    evaluate_account,
    renewal_phrase,
)
from worker.domain.account_batch import (
    StoredAccount,
    account_alert_rules,
    age_accounts,
    apply_account_batch,
)
from worker.domain.alerts import alert_id
from worker.domain.batch import Incoming

RULES = AccountAlertRules(
    churn_threshold=70, renewal_days=60, renewal_churn_min=50, recovery_points=5
)
DRIVERS = ("Invoice 46 days overdue", "1 downgrade request", "1 failed payment", "CSAT 4.0/5")


def level_of(churn: int) -> str:
    """The default framework's churn levels."""
    return (
        "critical" if churn >= 75 else "high" if churn >= 50 else "medium" if churn >= 25 else "low"
    )


def step(track, churn, days=None, drivers=DRIVERS):
    return evaluate_account(
        track,
        RULES,
        churn_risk=churn,
        churn_level=level_of(churn),
        days_to_renewal=days,
        drivers=drivers,
    )


def run(*steps):
    """Kinds raised by a sequence of (churn, days to renewal) scorings, and the last track."""
    track, kinds = AccountTrack(), []
    for churn, days in steps:
        track, change = step(track, churn, days)
        kinds.append(change.kind if change else None)
    return track, kinds


# -- the evaluator ---------------------------------------------------------------------------


def test_the_framework_gives_the_rules():
    assert account_alert_rules(FW) == RULES


def test_each_transition_alerts_once():
    track, kinds = run(
        (40, None),  # low: nothing
        (72, None),  # crosses the line: at risk (high)
        (73, None),  # unchanged level: nothing
        (80, None),  # critical: escalated
        (90, None),
        (72, None),  # critical -> at risk: still at risk, nothing
        (80, None),  # at risk -> critical again: escalated
        (40, None),  # recovered: resolved
    )
    assert kinds == [None, "at_risk", None, "escalated", None, None, "escalated", "resolved"]
    assert track == AccountTrack("none", 40, "medium")


def test_straight_to_critical_is_one_at_risk_alert_at_critical_level():
    _, change = step(AccountTrack(), 89)
    assert (change.kind, change.level) == ("at_risk", "critical")


def test_hysteresis_resolves_only_five_points_below_the_line():
    _, kinds = run(
        (69, None), (70, None), (66, None), (65, None), (64, None), (69, None), (70, None)
    )
    assert kinds == [None, "at_risk", None, None, "resolved", None, "at_risk"]


def test_reasons_name_the_churn_the_renewal_and_the_top_drivers():
    drivers = ("Renewal in 40 days", *DRIVERS)
    track, change = step(AccountTrack(), 89, 40, drivers)
    assert change.reasons == (
        "Churn risk 89/100 (critical)",
        "Renewal in 40 days at churn risk 89/100",
        # the top three drivers the reasons do not already say
        "Invoice 46 days overdue",
        "1 downgrade request",
        "1 failed payment",
    )
    assert change.previous == AccountTrack()
    assert track == AccountTrack("critical", 89, "critical")


def test_escalation_keeps_the_reasons_and_the_previous_churn():
    track, _ = step(AccountTrack(), 72)
    _, change = step(track, 78)
    assert change.kind == "escalated"
    assert change.reasons[0] == "Churn risk 78/100 (critical)"
    assert change.previous == AccountTrack("at_risk", 72, "high")


def test_a_renewal_nearing_at_high_churn_is_at_risk():
    # 55 is below the churn line: only the renewal within 60 days makes it at risk
    _, kinds = run((55, 90), (55, 61), (55, 60), (55, 30))
    assert kinds == [None, None, "at_risk", None]
    _, change = step(AccountTrack(), 55, 60)
    assert change.level == "at_risk"
    assert change.reasons == ("Renewal in 60 days at churn risk 55/100", *DRIVERS[:3])


def test_a_renewal_at_low_churn_or_unknown_raises_nothing():
    _, kinds = run((49, 10), (49, 0), (60, None), (49, -5))
    assert kinds == [None, None, None, None]


def test_an_overdue_renewal_counts_as_due():
    _, change = step(AccountTrack(), 55, -3)
    assert change.kind == "at_risk"
    assert change.reasons[0] == "Renewal overdue by 3 days at churn risk 55/100"
    assert renewal_phrase(0) == "Renewal due today" and renewal_phrase(1) == "Renewal in 1 day"


def test_renewal_hysteresis_and_a_renewal_moved_away_resolves():
    track, kinds = run((55, 40), (46, 35), (45, 30), (44, 25))
    assert kinds == ["at_risk", None, None, "resolved"]
    track, _ = step(AccountTrack(), 55, 40)
    track, change = step(track, 55, 300)  # renewed: the renewal line is released at once
    assert change.kind == "resolved"
    assert change.reasons == ("Recovered: churn risk 55/100 (high)", "Renewal in 300 days")
    assert change.previous.level == "at_risk" and track.level == "none"


@given(st.lists(st.tuples(st.integers(0, 100), st.none() | st.integers(-30, 400)), max_size=40))
def test_alerts_follow_the_level_and_never_repeat(steps):
    """Whatever the scores: at_risk only from none, resolved only from a raised level, escalated
    only from at_risk to critical, and nothing when the level does not change."""
    track = AccountTrack()
    for churn, days in steps:
        new, change = step(track, churn, days)
        expected = {
            ("none", "at_risk"): "at_risk",
            ("none", "critical"): "at_risk",
            ("at_risk", "critical"): "escalated",
            ("at_risk", "none"): "resolved",
            ("critical", "none"): "resolved",
        }.get((track.level, new.level))
        assert (change.kind if change else None) == expected
        assert new.level == "none" or level_of(churn) != "critical" or new.level == "critical"
        track = new


# -- the account batch and the clock -----------------------------------------------------------


def critical_account(account: str):
    """Healthy usage, one invoice 45 days overdue (churn 49, no renewal known), then a renewal
    in 40 days with a downgrade request: churn 89, critical."""
    renewal = (T0 + timedelta(days=45)).date().isoformat()
    return [
        created(account),
        usage(account, "2026-02-22", 40, 300, 1),
        usage(account, "2026-03-01", 40, 300, 2),
        ev(account, "nps_submitted", {"score": 7, "csat": 4}, 3),
        ev(
            account, "payment_failed", {"invoice_id": "I1", "amount": "5000", "days_overdue": 45}, 4
        ),
        ev(account, "renewal_updated", {"renewal_date": renewal, "downgrade_requested": True}, 5),
    ]


def test_a_batch_raises_one_alert_with_stable_id_and_reasons():
    events = critical_account("A")
    out = apply_account_batch({}, set(), incoming(*events), FW)
    (alert,) = out.alerts
    churn = out.scores["A"].churn
    assert (churn.score, churn.level, churn.breakdown.days_to_renewal) == (89, "critical", 40)
    assert (alert.entity, alert.kind, alert.level) == ("account", "at_risk", "critical")
    assert alert.alert_id == alert_id("A", events[-1].id, "at_risk")
    assert alert.reasons[:2] == [
        "Churn risk 89/100 (critical)",
        "Renewal in 40 days at churn risk 89/100",
    ]
    assert alert.reasons[2:] == [d for d in churn.drivers if "Renewal" not in d][:3]
    assert alert.drivers == list(churn.drivers)
    assert (alert.churn_risk, alert.days_to_renewal, alert.arr) == (89, 40, 60000)
    assert alert.previous.level == "none" and alert.previous.churn_risk == 49
    assert alert.caused_by.event_id == events[-1].id and alert.occurred_at == events[-1].time
    assert alert.name == "Account A" and alert.owner == "Ana"
    assert out.tracks["A"] == AccountTrack("critical", 89, "critical")
    # the same events again: the same alert id; parsed back through the topic's union
    again = apply_account_batch({}, set(), incoming(*events), FW).alerts
    assert [a.alert_id for a in again] == [alert.alert_id]
    assert AlertAdapter.validate_json(alert.model_dump_json()) == alert


def test_the_batch_continues_from_the_stored_track():
    events = critical_account("A")
    first = apply_account_batch({}, set(), incoming(*events), FW)
    stored = {"A": StoredAccount(first.states["A"], first.tracks["A"])}
    # paid and renewed far away: recovered
    paid = ev("A", "payment_succeeded", {"invoice_id": "I1"}, 6)
    renewed = ev(
        "A", "renewal_updated", {"renewal_date": "2027-06-01", "downgrade_requested": False}, 7
    )
    out = apply_account_batch(stored, set(), incoming(paid, renewed), FW)
    assert [a.kind for a in out.alerts] == ["resolved"]
    assert out.alerts[0].caused_by.event_id == paid.id
    assert out.alerts[0].reasons[0].startswith("Recovered: churn risk ")
    assert out.tracks["A"].level == "none"


def tick_at(day: float) -> Incoming:
    return Incoming(make_tick(T0 + timedelta(days=day), "crm.account-events", 0, 86400), ref())


def test_a_tick_raises_the_alert_of_a_renewal_coming_near():
    renewal = (T0 + timedelta(days=5 + 75)).date().isoformat()
    events = [*critical_account("B")[:5], ev("B", "renewal_updated", {"renewal_date": renewal}, 5)]
    out = apply_account_batch({}, set(), incoming(*events), FW)
    assert not out.alerts and out.scores["B"].churn.breakdown.days_to_renewal == 75
    stored = [StoredAccount(out.states["B"], out.tracks["B"])]

    tick = tick_at(25)  # 55 days before the renewal
    aged = age_accounts(stored, tick, FW)
    (alert,) = aged.alerts
    churn = aged.scores["B"].churn
    assert churn.breakdown.days_to_renewal == 55 and 50 <= churn.score < 70
    assert (alert.kind, alert.level) == ("at_risk", "at_risk")
    assert alert.reasons[0] == f"Renewal in 55 days at churn risk {churn.score}/100"
    assert alert.alert_id == alert_id("B", tick.event.id, "at_risk")
    assert alert.caused_by.event_type == "clock.tick" and alert.occurred_at == tick.event.time
    assert aged.aged == 1 and aged.scores["B"].as_of == tick.event.time
    # a later tick re-evaluates: still at risk, nothing new
    later = age_accounts([StoredAccount(out.states["B"], aged.tracks["B"])], tick_at(30), FW)
    assert not later.alerts and later.tracks["B"].level == "at_risk"
