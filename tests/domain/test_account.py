"""Account events: schema, merge rules, scoring and the pure batch."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas.account_events import ACCOUNT_EVENT_TYPES, AccountEventAdapter
from tests.account_factories import FW, T0, created, ev, fold, incoming, raw_event, usage
from worker.domain.account import MAX_USAGE_PERIODS, apply_account_event, score_account
from worker.domain.account_alerts import AccountTrack
from worker.domain.account_batch import StoredAccount, apply_account_batch
from worker.engine import ChurnInput, ExpansionInput, score_churn
from worker.engine import score_expansion as engine_score_expansion
from worker.store.accounts import account_row

# -- schema ----------------------------------------------------------------------------------


def test_every_event_type_validates():
    samples = {
        "account.created": {"name": "Acme"},
        "account.updated": {"owner": "Bo"},
        "account.usage_reported": {"period_end": "2026-02-28", "active_seats": 3, "logins": 9},
        "account.ticket_opened": {"ticket_id": "T1", "severity": "urgent", "escalated": True},
        "account.ticket_closed": {"ticket_id": "T1"},
        "account.payment_failed": {"invoice_id": "I1", "amount": "99.50", "days_overdue": 3},
        "account.payment_succeeded": {"invoice_id": "I1"},
        "account.nps_submitted": {"score": 7, "csat": 4.5},
        "account.renewal_updated": {"renewal_date": "2026-09-01", "downgrade_requested": True},
        "account.churned": {"reason": "moved to a competitor"},
        "account.renewed": {"renewal_date": "2027-09-01", "arr": "72000"},
    }
    assert set(samples) == set(ACCOUNT_EVENT_TYPES)
    for kind, data in samples.items():
        event = ev("A", kind.removeprefix("account."), data)
        assert event.type == kind


@pytest.mark.parametrize(
    ("kind", "data", "envelope", "fragment"),
    [
        ("ticket_opened", {"ticket_id": "T", "severity": "blocker"}, {}, "severity"),
        ("nps_submitted", {"score": 11}, {}, "score"),
        ("nps_submitted", {"score": 8, "csat": 6}, {}, "csat"),
        ("payment_failed", {"invoice_id": "I", "amount": -1}, {}, "amount"),
        ("created", {"name": "A", "tier": "gold"}, {}, "tier"),
        ("created", {"plan": "gold!"}, {}, "plan"),
        (
            "usage_reported",
            {
                "period_end": "2026-02-28",
                "active_seats": 1,
                "logins": 1,
                "features_used": 9,
                "features_available": 5,
            },
            {},
            "features_used",
        ),
        ("created", {}, {"time": "2026-03-02T09:00:00"}, "UTC offset"),
        ("created", {}, {"time": "1850-03-02T09:00:00Z"}, "outside"),
        ("renewal_updated", {"renewal_date": "3024-01-01"}, {}, "outside"),
    ],
)
def test_invalid_events_are_rejected(kind, data, envelope, fragment):
    raw = raw_event("A", kind, data)
    raw.update(envelope)
    with pytest.raises(ValidationError, match=fragment):
        AccountEventAdapter.validate_python(raw)


def test_features_used_as_names_count_each_once():
    s = fold(
        created("A"),
        usage("A", "2026-02-28", 10, 50, 1, features_used=["search", "export", "search"]),
    )
    assert s.features_used == 2
    assert s.usage_history[-1].features_used == 2


# -- merge rules -----------------------------------------------------------------------------


def test_creation_takes_fields_event_time_and_tier_key():
    s = fold(created("A", plan="Enterprise"))
    assert (s.name, s.industry, s.owner, s.plan) == ("Account A", "technology", "Ana", "enterprise")
    assert (s.licensed_seats, s.features_available, s.arr) == (50, 20, Decimal(60000))
    assert s.created_at == s.last_event_time == T0


def test_any_event_creates_an_unknown_account():
    s = fold(ev("A", "payment_failed", {"invoice_id": "I1", "amount": 10}, day=2))
    assert s.account_id == "A"
    assert s.created_at == T0 + timedelta(days=2)
    assert s.failed_payments == 1


def test_update_changes_only_given_fields():
    s = fold(created("A"), ev("A", "updated", {"owner": "Bo"}, day=1))
    assert (s.owner, s.name, s.licensed_seats) == ("Bo", "Account A", 50)


def test_usage_history_is_ordered_replaced_per_period_and_bounded():
    events = [created("A")]
    for i in range(MAX_USAGE_PERIODS + 3):
        end = (date(2025, 1, 5) + timedelta(weeks=i)).isoformat()
        events.append(usage("A", end, 10 + i, 100 + i, day=1 + i))
    s = fold(*events)
    assert len(s.usage_history) == MAX_USAGE_PERIODS
    ends = [p.period_end for p in s.usage_history]
    assert ends == sorted(ends)
    assert s.usage_history[-1].logins == 100 + MAX_USAGE_PERIODS + 2
    # a corrected report for a recorded period replaces it in place
    last_end = s.usage_history[-1].period_end.isoformat()
    s = fold(*events, usage("A", last_end, 1, 2, day=40))
    assert len(s.usage_history) == MAX_USAGE_PERIODS
    assert (s.usage_history[-1].active_seats, s.usage_history[-1].logins) == (1, 2)


def test_late_report_for_an_old_period_only_fills_that_period():
    s = fold(
        created("A", licensed_seats=50),
        usage("A", "2026-02-28", 40, 300, 1, licensed_seats=60, features_used=10),
        usage("A", "2026-01-31", 30, 200, 2, licensed_seats=45, features_used=4),
    )
    assert [p.period_end for p in s.usage_history] == [date(2026, 1, 31), date(2026, 2, 28)]
    assert (s.licensed_seats, s.features_used) == (60, 10)


def test_tickets_open_update_close_and_worst_severity():
    s = fold(
        created("A"),
        ev("A", "ticket_opened", {"ticket_id": "T1", "severity": "low"}, day=1),
        ev("A", "ticket_opened", {"ticket_id": "T2", "severity": "high"}, day=2),
    )
    assert (s.open_ticket_count, s.max_ticket_severity, s.escalated_tickets) == (2, "high", 0)
    s = fold(
        created("B"),
        ev("B", "ticket_opened", {"ticket_id": "T1", "severity": "low"}, day=1),
        ev("B", "ticket_opened", {"ticket_id": "T1", "severity": "urgent", "escalated": True}, 3),
    )
    assert s.open_ticket_count == 1
    assert s.open_tickets["T1"].severity == "critical"  # urgent is the engine's critical
    assert s.open_tickets["T1"].opened_at == T0 + timedelta(days=1)  # kept on the update
    assert s.escalated_tickets == 1
    s = apply_account_event(s, ev("B", "ticket_closed", {"ticket_id": "T1"}, day=4))
    assert (s.open_ticket_count, s.max_ticket_severity, s.escalated_tickets) == (0, "none", 0)
    s2 = apply_account_event(s, ev("B", "ticket_closed", {"ticket_id": "nope"}, day=5))
    assert s2.open_tickets == {} and s2.last_event_time == T0 + timedelta(days=5)


def test_payments_fail_count_and_clear_when_paid():
    s = fold(
        created("A"),
        ev("A", "payment_failed", {"invoice_id": "I1", "amount": 100, "days_overdue": 5}, day=1),
        ev("A", "payment_failed", {"invoice_id": "I1", "amount": 100, "days_overdue": 8}, day=4),
        ev("A", "payment_failed", {"invoice_id": "I2", "amount": 50}, day=5),
    )
    assert s.failed_payments == 3
    assert s.failed_payments_total == 3
    assert s.failed_invoices["I1"].failures == 2
    # days overdue run on from the last failure report, in event time
    assert s.days_overdue(T0 + timedelta(days=4)) == 8
    assert s.days_overdue(T0 + timedelta(days=14)) == 18
    s = apply_account_event(s, ev("A", "payment_succeeded", {"invoice_id": "I1"}, day=6))
    assert (s.failed_payments, s.failed_payments_total) == (1, 3)
    assert s.days_overdue(T0 + timedelta(days=6)) == 1  # I2: 0 when it failed, a day ago


def test_nps_latest_answer_keeps_csat_when_not_given():
    s = fold(
        created("A"),
        ev("A", "nps_submitted", {"score": 9, "csat": 4.5}, day=1),
        ev("A", "nps_submitted", {"score": 3}, day=2),
    )
    assert (s.nps, s.csat, s.nps_submitted_at) == (3, 4.5, T0 + timedelta(days=2))


def test_renewal_update_sets_contract_fields():
    s = fold(
        created("A"),
        ev(
            "A",
            "renewal_updated",
            {
                "renewal_date": "2026-06-30",
                "plan": "Starter",
                "seats": 20,
                "arr": "12000.50",
                "downgrade_requested": True,
            },
            day=1,
        ),
    )
    assert (s.renewal_date, s.plan, s.licensed_seats) == (date(2026, 6, 30), "starter", 20)
    assert (s.arr, s.downgrade_requested) == (Decimal("12000.50"), True)
    s = apply_account_event(s, ev("A", "renewal_updated", {"downgrade_requested": False}, 2))
    assert (s.downgrade_requested, s.plan, s.renewal_date) == (False, "starter", date(2026, 6, 30))


def test_stale_event_changes_nothing_and_same_instant_applies():
    s = fold(created("A"), ev("A", "updated", {"owner": "Bo"}, day=5))
    assert apply_account_event(s, ev("A", "updated", {"owner": "Cy"}, day=2)) is None
    same = apply_account_event(s, ev("A", "updated", {"owner": "Di"}, day=5))
    assert same is not None and same.owner == "Di"


# -- the batch -------------------------------------------------------------------------------


def test_batch_skips_seen_and_repeated_ids_and_stale_events():
    first = created("A")
    later = ev("A", "updated", {"owner": "Bo"}, day=5)
    older = ev("A", "updated", {"owner": "Cy"}, day=2)
    already = ev("A", "updated", {"owner": "Zed"}, day=6)
    out = apply_account_batch({}, {already.id}, incoming(first, later, first, older, already), FW)
    assert [i.event.id for i in out.applied] == [first.id, later.id]
    assert [i.event.id for i in out.duplicates] == [first.id, already.id]
    assert [i.event.id for i in out.stale] == [older.id]
    assert out.states["A"].owner == "Bo"
    assert not out.failed


def test_batch_continues_from_the_stored_state():
    stored = fold(created("A"), ev("A", "ticket_opened", {"ticket_id": "T", "severity": "high"}))
    out = apply_account_batch(
        {"A": StoredAccount(stored, AccountTrack())},
        set(),
        incoming(ev("A", "nps_submitted", {"score": 2}, day=1)),
        FW,
    )
    assert out.states["A"].open_ticket_count == 1 and out.states["A"].nps == 2


def test_churn_rises_with_every_failed_payment():
    events = [created("A"), usage("A", "2026-02-28", 40, 300, 1)]
    before = apply_account_batch({}, set(), incoming(*events), FW).scores["A"].churn.score
    risks = []
    for i in range(4):
        events.append(ev("A", "payment_failed", {"invoice_id": f"I{i}", "amount": 100}, day=2 + i))
        out = apply_account_batch({}, set(), incoming(*events), FW)
        risks.append(out.scores["A"].churn.score)
    assert before <= risks[0] < risks[1] < risks[2] < risks[3]
    assert out.scores["A"].churn.breakdown.financial.risk == 100
    assert "4 failed payments" in out.scores["A"].churn.drivers
    # and falls back when the invoices are paid
    events += [ev("A", "payment_succeeded", {"invoice_id": f"I{i}"}, day=9) for i in range(4)]
    out = apply_account_batch({}, set(), incoming(*events), FW)
    assert out.scores["A"].churn.score == before


def test_scores_use_the_event_time_as_now():
    renewal = ev("A", "renewal_updated", {"renewal_date": "2026-05-01"}, day=1)
    failed = ev("A", "payment_failed", {"invoice_id": "I", "amount": 5, "days_overdue": 2}, day=1)
    for day in (3, 30, 61):
        nps = ev("A", "nps_submitted", {"score": 5}, day=day)
        out = apply_account_batch({}, set(), incoming(created("A"), renewal, failed, nps), FW)
        churn = out.scores["A"].churn
        event_day = (T0 + timedelta(days=day)).date()
        assert churn.breakdown.days_to_renewal == (date(2026, 5, 1) - event_day).days
        assert out.states["A"].days_overdue(nps.time) == 2 + day - 1
        expected = score_churn(
            ChurnInput(
                industry="technology",
                licensed_seats=50,
                failed_payments=1,
                days_overdue=2 + day - 1,
                nps=5,
                renewal_date=date(2026, 5, 1),
                as_of=event_day,
            ),
            FW,
        )
        assert churn.score == expected.score and churn.drivers == expected.drivers
        row = account_row(out.states["A"], out.scores["A"])
        assert row["scored_at"] == nps.time.isoformat().replace("+00:00", "Z")


def test_a_state_is_scored_after_each_event_not_only_the_last(monkeypatch):
    import worker.domain.account_batch as batch

    scored = []  # (state, churn risk) of every scoring, in order

    def spy(state, framework, *args, **kwargs):
        score = score_account(state, framework, *args, **kwargs)
        scored.append((state, score.churn.score))
        return score

    monkeypatch.setattr(batch, "score_account", spy)
    opened = ev("A", "ticket_opened", {"ticket_id": "T", "severity": "urgent"}, 1)
    events = [created("A"), opened, ev("A", "ticket_closed", {"ticket_id": "T"}, 2)]
    stale = ev("A", "updated", {"owner": "Bo"}, day=0.5)
    out = apply_account_batch({}, set(), incoming(*events, opened, stale), FW)
    assert [i.event.id for i in out.applied] == [e.id for e in events]
    # one scoring per applied event (none for the duplicate or the stale one), each of the
    # state right after that event, "now" being its time
    assert [state for state, _ in scored] == [fold(*events[: n + 1]) for n in range(3)]
    risks = [risk for _, risk in scored]
    assert risks[1] > risks[0] == risks[2]  # the urgent ticket was seen while it was open
    assert out.scores["A"].churn.score == risks[-1]


def test_an_event_whose_state_cannot_be_scored_fails_itself_not_the_last_one(monkeypatch):
    import worker.domain.account as accounts

    real = accounts.score_churn

    def failing(inputs, framework, as_of=None):
        if inputs.max_ticket_severity == "critical":
            raise RuntimeError("cannot score an urgent ticket")
        return real(inputs, framework, as_of)

    monkeypatch.setattr(accounts, "score_churn", failing)
    opened = ev("A", "ticket_opened", {"ticket_id": "T", "severity": "urgent"}, 1)
    closed = ev("A", "ticket_closed", {"ticket_id": "T"}, 2)
    first = created("A")
    out = apply_account_batch({}, set(), incoming(first, opened, closed), FW)
    # the intermediate state (ticket open) is scored, fails, and only its event is rejected
    assert [r.ref.offset for r in out.failed] == [1]
    assert "cannot score an urgent ticket" in out.failed[0].reason
    assert [i.event.id for i in out.applied] == [first.id, closed.id]
    assert out.states["A"].open_tickets == {}
    assert out.states["A"].last_event_time == closed.time


def test_expansion_score_needs_plan_seats_usage_and_features():
    out = apply_account_batch({}, set(), incoming(created("A")), FW)
    assert out.scores["A"].expansion is None
    assert "usage" in out.scores["A"].expansion_unscored
    assert "features_used" in out.scores["A"].expansion_unscored

    events = [
        created("A"),
        usage("A", "2026-01-31", 40, 200, 1, features_used=10),
        usage("A", "2026-02-28", 47, 260, 2, features_used=14),
    ]
    out = apply_account_batch({}, set(), incoming(*events), FW)
    score = out.scores["A"]
    churn = score_churn(
        ChurnInput(
            industry="technology",
            logins=[200, 260],
            active_seats=[40, 47],
            licensed_seats=50,
            as_of=date(2026, 3, 4),
        ),
        FW,
    )
    assert score.churn.score == churn.score
    expected = engine_score_expansion(
        ExpansionInput(
            industry="technology",
            plan_tier="professional",
            licensed_seats=50,
            active_seats=47,
            features_adopted=14,
            features_available=20,
            churn_risk=churn.score,
            usage=[200, 260],
        ),
        FW,
    )
    assert score.expansion is not None
    assert (score.expansion.score, score.expansion.motion) == (expected.score, expected.motion)
    assert score.expansion.drivers == expected.drivers


def test_unknown_plan_tier_leaves_expansion_unscored_but_churn_scored():
    events = [created("A", plan="Platinum"), usage("A", "2026-02-28", 4, 20, 1, features_used=3)]
    out = apply_account_batch({}, set(), incoming(*events), FW)
    score = out.scores["A"]
    assert score.expansion is None and "unknown plan tier 'platinum'" in score.expansion_unscored
    assert score.churn.score >= 0 and out.applied and not out.failed


def test_processing_failure_is_rejected_and_the_batch_goes_on(monkeypatch):
    import worker.domain.account as accounts

    real = accounts.score_churn

    def failing(inputs, framework, as_of=None):
        if inputs.account_id == "BAD":
            raise RuntimeError("boom")
        return real(inputs, framework, as_of)

    monkeypatch.setattr(accounts, "score_churn", failing)
    out = apply_account_batch({}, set(), incoming(created("BAD"), created("OK")), FW)
    assert [r.error for r in out.failed] == ["processing_failed"]
    assert "boom" in out.failed[0].reason and out.failed[0].ref.offset == 0
    assert set(out.states) == {"OK"}
