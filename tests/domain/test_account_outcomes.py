"""Account attributes and outcomes: merged key by key, outcomes kept with the account as it was
before them (the churn model's training rows)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.account_factories import FW, created, ev, fold, incoming, usage
from worker.domain.account import HEURISTIC, MAX_ATTRIBUTES, churn_features, score_account
from worker.domain.account_batch import apply_account_batch


def test_attributes_merge_key_by_key_and_null_removes():
    state = fold(
        created("A", attributes={"region": "France", "tenure_months": 14, "plan_type": "x"}),
        ev("A", "updated", {"attributes": {"tenure_months": 15.5, "plan_type": None}}, 1),
        ev("A", "updated", {"owner": "Bo"}, 2),  # no attributes: they stay
    )
    assert state.attributes == {"region": "France", "tenure_months": 15.5}
    features = churn_features(state, state.last_event_time)
    assert features["attr.region"] == "France" and features["attr.tenure_months"] == 15.5


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"Region": "x"}, r"attributes\.Region\.\[key\]\n  String should match pattern"),
        ({"flag": True}, r"attributes\.flag\.constrained-float\n  Input should be a valid number"),
        (
            {"x": float("nan")},
            r"attributes\.x\.constrained-float\n  Input should be a finite number",
        ),
        ({"x": "y" * 201}, r"attributes\.x\.constrained-str\n  String should have at most 200 "),
    ],
)
def test_bad_attributes_are_refused_by_the_contract(attributes, reason):
    with pytest.raises(ValidationError, match=reason):
        created("A", attributes=attributes)


def test_too_many_attributes_fail_the_event():
    many = {f"a{i}": i for i in range(MAX_ATTRIBUTES)}
    state = fold(created("A", attributes=many))
    out = apply_account_batch(
        {},
        (),
        incoming(created("A", attributes=many), ev("A", "updated", {"attributes": {"b": 1}}, 1)),
        FW,
    )
    assert len(state.attributes) == MAX_ATTRIBUTES
    assert len(out.failed) == 1 and "more than" in out.failed[0].reason


def test_outcomes_are_kept_with_the_account_before_them():
    out = apply_account_batch(
        {},
        (),
        incoming(
            created("A", renewal_date="2026-06-01", attributes={"region": "Spain"}),
            usage("A", "2026-03-01", 40, 300, 1),
            ev("A", "renewed", {"renewal_date": "2027-06-01", "arr": "70000"}, 2),
            created("B"),
            ev("B", "churned", {"reason": "price"}, 3),
        ),
        FW,
    )
    a, b = out.outcomes
    assert (a.account_id, a.outcome, a.churned, a.event_id) == ("A", "renewed", False, a.event_id)
    # the training row is the account before the renewal: the old renewal date, no outcome
    assert str(a.before.renewal_date) == "2026-06-01" and a.before.outcome is None
    assert a.features()["days_to_renewal"] == (a.before.renewal_date - a.occurred_at.date()).days
    after = out.states["A"]
    assert (after.outcome, str(after.renewal_date), after.outcome_at) == (
        "renewed",
        "2027-06-01",
        a.occurred_at,
    )
    assert (b.outcome, b.churned) == ("churned", True)
    assert out.states["B"].outcome == "churned"


def test_the_heuristic_names_itself_as_the_churn_model():
    state = fold(created("A"))
    score = score_account(state, FW)
    assert score.learned is None and score.churn_model_version == HEURISTIC == "heuristic"
