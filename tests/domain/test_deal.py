from datetime import date, timedelta
from decimal import Decimal

from schemas.deal_events import DealStage
from tests.factories import T0, created, event
from worker.domain.deal import apply_event


def fold(*events):
    state = None
    for ev in events:
        state = apply_event(state, ev) or state
    return state


def test_creation_takes_fields_and_event_time():
    s = fold(created("D1", amount=5000, expected_close_date="2026-04-01"))
    assert s.amount == Decimal(5000)
    assert s.created_at == s.stage_entered_at == s.last_event_time == T0
    assert s.expected_close_date == date(2026, 4, 1)


def test_stage_change_moves_stage_entered_at_only_when_stage_differs():
    s = fold(
        created("D1"),
        event("D1", "stage_changed", {"stage": "qualification"}, day=3),
        event("D1", "stage_changed", {"stage": "qualification"}, day=5),
    )
    assert s.stage is DealStage.qualification
    assert s.stage_entered_at == T0 + timedelta(days=3)


def test_close_date_pushes_count_only_later_dates():
    s = fold(
        created("D1", expected_close_date="2026-04-01"),
        event("D1", "updated", {"expected_close_date": "2026-04-15"}, day=1),
        event("D1", "updated", {"expected_close_date": "2026-04-10"}, day=2),  # pulled in
        event("D1", "updated", {"expected_close_date": "2026-05-01"}, day=3),
    )
    assert s.close_date_pushes == 2
    assert s.expected_close_date == date(2026, 5, 1)


def test_activity_counts_and_never_moves_last_activity_back():
    s = fold(
        created("D1"),
        event("D1", "activity_logged", {"kind": "call", "objection_handled": True}, day=4),
        event(
            "D1", "activity_logged", {"kind": "email", "occurred_at": "2026-03-03T00:00:00Z"}, day=5
        ),
    )
    assert (s.interactions, s.objections_handled) == (2, 1)
    assert s.last_activity_at == T0 + timedelta(days=4)


def test_stale_event_changes_nothing():
    s = fold(created("D1"), event("D1", "updated", {"amount": 9000}, day=5))
    assert apply_event(s, event("D1", "updated", {"amount": 1}, day=2)) is None


def test_closing_sets_stage_time_and_final_amount():
    s = fold(created("D1", amount=1000), event("D1", "closed_won", {"amount": 1200}, day=9))
    assert s.stage is DealStage.closed_won
    assert s.closed_at == T0 + timedelta(days=9)
    assert s.amount == Decimal(1200)


def test_update_for_unknown_deal_creates_it_in_prospecting():
    s = fold(event("D9", "updated", {"amount": 700}, day=1))
    assert s.stage is DealStage.prospecting and s.amount == Decimal(700)


def test_competitors_are_deduplicated_in_order():
    s = fold(created("D1", competitors_mentioned=["B", "A", "B"]))
    assert s.competitors == ("B", "A")


def test_batch_records_stints_with_left_at_and_collapses_same_instant_changes():
    from worker.domain.batch import Incoming, RecordRef
    from worker.domain.deal_batch import apply_deal_batch
    from worker.engine import load_framework

    ref = RecordRef("t", 0, 0, None, None, ())
    events = [
        created("D1"),
        event("D1", "stage_changed", {"stage": "qualification"}, day=2),
        event("D1", "updated", {"amount": 5}, day=3),  # no stage change: no stint
        event("D1", "stage_changed", {"stage": "proposal"}, day=5),
        event("D1", "stage_changed", {"stage": "negotiation"}, day=5),  # same instant
    ]
    out = apply_deal_batch({}, set(), [Incoming(e, ref) for e in events], load_framework())
    day = lambda n: T0 + timedelta(days=n)  # noqa: E731
    assert [(s.stage, s.entered_at, s.left_at) for s in out.new_stints()] == [
        ("prospecting", day(0), day(2)),
        ("qualification", day(2), day(5)),
        ("negotiation", day(5), None),
    ]


def test_a_late_amount_behind_a_newer_stage_change_is_kept():
    """HubSpot sends one notification per property, unordered, retried for a day: an amount
    set before a stage change but delivered after it used to be dropped as stale, and the
    deal kept no amount."""
    s = fold(
        created("D1", amount=None),
        event("D1", "stage_changed", {"stage": "proposal"}, day=3),
    )
    late = apply_event(s, event("D1", "updated", {"amount": 4200, "stage": "qualification"}, day=1))
    assert late is not None
    assert late.amount == Decimal(4200)
    assert late.stage is DealStage.proposal  # the newer stage stays: a set value is not undone
    assert (late.last_event_id, late.last_event_time) == (s.last_event_id, s.last_event_time)


def test_a_late_creation_fills_what_an_early_update_could_not_know():
    s = fold(event("D2", "updated", {"amount": 700}, day=2))  # created implicitly at day 2
    late = apply_event(s, created("D2", amount=500, day=0))
    assert late is not None
    assert late.name == "Deal D2" and late.amount == Decimal(700)  # a set value stays
    assert late.created_at == T0


def test_a_late_closing_wins_the_stage_but_not_a_newer_amount():
    """The stage was last set at creation (day 0), the amount on day 5: a closing of day 2
    delivered late closes the deal and its amount loses to the newer one."""
    s = fold(created("D3"), event("D3", "updated", {"amount": 9000}, day=5))
    late = apply_event(s, event("D3", "closed_won", {"amount": 1}, day=2))
    assert late is not None
    assert late.stage is DealStage.closed_won and late.amount == Decimal(9000)
    assert late.closed_at == late.stage_entered_at == T0 + timedelta(days=2)
    assert late.last_event_time == T0 + timedelta(days=5)


def test_a_late_activity_is_still_stale():
    s = fold(created("D3"), event("D3", "updated", {"amount": 9000}, day=5))
    assert apply_event(s, event("D3", "activity_logged", {"kind": "call"}, day=2)) is None


def test_an_older_amount_after_a_newer_stage_change_wins_over_an_older_amount():
    """The issue's case: the amount set on day 1 was stored from day 0; a stage change of day
    3 arrived first; the day-1 amount, delivered last, is newer than the stored amount."""
    s = fold(
        created("D4", amount=100),
        event("D4", "stage_changed", {"stage": "proposal"}, day=3),
        event("D4", "updated", {"amount": 4200}, day=1),
    )
    assert s.amount == Decimal(4200) and s.stage is DealStage.proposal
    assert s.field_times["amount"] == T0 + timedelta(days=1)
    assert s.last_event_time == T0 + timedelta(days=3)


def test_a_stale_amount_never_overwrites_a_newer_one():
    s = fold(
        created("D5"),
        event("D5", "updated", {"amount": 500}, day=4),
        event("D5", "stage_changed", {"stage": "proposal"}, day=6),
    )
    assert apply_event(s, event("D5", "updated", {"amount": 1}, day=2)) is None
    assert s.amount == Decimal(500)


def test_per_field_merge_is_independent_of_delivery_order():
    """One notification per property, each retried in any order: every order of delivery
    gives the same fields."""
    from itertools import permutations

    changes = [
        event("D6", "updated", {"amount": 100}, day=1),
        event("D6", "stage_changed", {"stage": "qualification"}, day=2),
        event("D6", "updated", {"amount": 300, "name": "Renewal"}, day=3),
        event("D6", "updated", {"expected_close_date": "2026-06-01"}, day=4),
        event("D6", "stage_changed", {"stage": "proposal"}, day=5),
        event("D6", "updated", {"cleared": ["name"]}, day=6),
    ]
    seen = set()
    for order in permutations(changes):
        s = fold(created("D6", amount=None, day=0), *order)
        seen.add((s.amount, s.stage, s.name, s.expected_close_date, s.last_event_time))
    assert seen == {
        (Decimal(300), DealStage.proposal, None, date(2026, 6, 1), T0 + timedelta(days=6))
    }


def test_a_cleared_field_clears_unless_set_later():
    s = fold(created("D7", amount=800), event("D7", "updated", {"cleared": ["amount"]}, day=2))
    assert s.amount is None and s.field_times["amount"] == T0 + timedelta(days=2)
    assert apply_event(s, event("D7", "updated", {"amount": 5}, day=1)) is None  # older
    again = apply_event(s, event("D7", "updated", {"amount": 900}, day=3))
    assert again is not None and again.amount == Decimal(900)
    cleared = fold(created("D8", competitors_mentioned=["X"]))
    cleared = apply_event(cleared, event("D8", "updated", {"cleared": ["competitors_mentioned"]}))
    assert cleared is not None and cleared.competitors == ()


def test_a_field_cannot_be_set_and_cleared_in_one_change():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="both set and cleared: amount"):
        event("D9", "updated", {"amount": 5, "cleared": ["amount"]})


def test_a_late_stage_of_a_deal_first_seen_through_another_field_replaces_its_default():
    s = fold(event("D10", "updated", {"amount": 700}, day=3))  # prospecting by default
    late = apply_event(s, event("D10", "stage_changed", {"stage": "proposal"}, day=1))
    assert late is not None and late.stage is DealStage.proposal
    assert late.stage_entered_at == s.stage_entered_at  # the default stint, replaced


def test_a_deal_first_seen_through_a_change_is_incomplete_until_its_creation():
    """Issue 10: an update for a deal never seen used to become an empty deal scored at 66 %
    and alerted on; it is now incomplete until its creation arrives, even late."""
    from worker.domain.batch import Incoming, RecordRef
    from worker.domain.deal_batch import apply_deal_batch
    from worker.engine import load_framework

    s = fold(event("D11", "updated", {"amount": 700_000}, day=2))
    assert s.incomplete
    assert not fold(created("D12")).incomplete
    late = apply_event(s, created("D11", amount=5, day=0))
    assert late is not None and not late.incomplete and late.amount == Decimal(700_000)

    ref = RecordRef("t", 0, 0, None, None, ())
    risky = {  # large, overdue, silent for months: at risk
        "amount": 900_000,
        "stage": "negotiation",
        "expected_close_date": "2025-10-01",
        "last_activity_at": "2025-06-01T00:00:00Z",
    }
    out = apply_deal_batch(
        {}, set(), [Incoming(event("D13", "stage_changed", risky), ref)], load_framework()
    )
    assert out.states["D13"].incomplete and out.alerts == []
    out = apply_deal_batch({}, set(), [Incoming(created("D14", **risky), ref)], load_framework())
    assert not out.states["D14"].incomplete
    assert [a.kind for a in out.alerts] == ["at_risk"]  # the same facts, complete: alerted
