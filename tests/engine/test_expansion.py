from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.engine import ExpansionInput, ExpansionResult, Framework, score_expansion
from worker.engine.framework import default_framework

from ._determinism import expansion_scores, here, in_another_process
from ._errors import one_validation_error
from ._helpers import round_half_up


def account(**overrides: Any) -> ExpansionInput:
    fields: dict[str, Any] = {
        "plan_tier": "professional",
        "licensed_seats": 100,
        "active_seats": 60,
        "features_adopted": 5,
        "features_available": 20,
        "health": 80,
    }
    fields.update(overrides)
    return ExpansionInput(**fields)


def test_worked_example(fw: Framework) -> None:
    ep = fw.defaults.params.expansion
    a = account(active_seats=92, features_adopted=12, health=None, churn_risk=30, usage=[100, 130])
    result = score_expansion(a, fw)

    u = 92 / 100
    seat = min(
        100, max(0, 100 * (u - ep.utilisation_floor) / (ep.utilisation_full - ep.utilisation_floor))
    )
    feature = 100 * 12 / 20
    headroom = ep.tiers["professional"].headroom
    health = 100 - 30
    growth = min(100, max(0, 50 + 50 * 0.3 / ep.growth_full))
    w = ep.weights
    expected = round_half_up(
        w.seat_utilisation * seat
        + w.feature_adoption * feature
        + w.plan_headroom * headroom
        + w.health * health
        + w.usage_growth * growth
    )
    assert result.score == expected
    b = result.breakdown
    assert b.seat_utilisation.value == pytest.approx(seat)
    assert b.usage_growth.value == pytest.approx(growth)
    assert b.health_source == "churn_risk"
    assert b.growth == pytest.approx(0.3)
    # 92 % seats >= 85 % trigger, 60 % adoption >= 60 % trigger; seats score higher
    assert seat > feature
    assert result.motion == "seat_expansion"
    assert "92% of licensed seats in use (92/100)" in result.drivers
    assert "Account health 70/100 (from churn risk)" in result.drivers
    assert result.framework_version == fw.version


def test_plan_upgrade_and_cross_sell(fw: Framework) -> None:
    upgrade = score_expansion(account(features_adopted=18, active_seats=70), fw)
    assert upgrade.motion == "plan_upgrade"
    top = score_expansion(account(plan_tier="Enterprise", features_adopted=18, active_seats=70), fw)
    assert top.breakdown.top_tier
    assert top.motion == "cross_sell"


def test_no_motion_for_an_unhealthy_account(fw: Framework) -> None:
    ep = fw.defaults.params.expansion
    result = score_expansion(account(active_seats=99, health=ep.min_health_for_motion - 1), fw)
    assert result.motion == "none"
    assert "stabilise" in result.motion_reason


def test_no_motion_without_a_trigger(fw: Framework) -> None:
    result = score_expansion(account(active_seats=70, features_adopted=8), fw)
    assert result.motion == "none"


def test_overage_caps_the_seat_component(fw: Framework) -> None:
    result = score_expansion(account(active_seats=150), fw)
    assert result.breakdown.utilisation == 1.5
    assert result.breakdown.seat_utilisation.value == 100


def test_unknown_health_and_growth_use_documented_defaults(fw: Framework) -> None:
    ep = fw.defaults.params.expansion
    result = score_expansion(account(health=None), fw)
    assert result.breakdown.health.value == ep.default_health
    assert result.breakdown.health_source == "default"
    assert result.breakdown.usage_growth.value == 50
    assert result.breakdown.growth is None


def test_errors(fw: Framework) -> None:
    with pytest.raises(ValueError, match="unknown plan tier 'gold'"):
        score_expansion(account(plan_tier="Gold"), fw)
    model_level = "Value error, "
    for bad, field, message in (
        ({"features_adopted": 21}, None, "features_adopted cannot exceed features_available"),
        ({"health": 50, "churn_risk": 50}, None, "give either health or churn_risk, not both"),
        ({"licensed_seats": 0}, "licensed_seats", "Input should be greater than or equal to 1"),
        ({"usage": [1, -1]}, None, "usage counts must not be negative"),
    ):
        reason = one_validation_error(
            "ExpansionInput", message if field else model_level + message, field
        )
        with pytest.raises(ValidationError, match=reason):
            account(**bad)


@settings(max_examples=300, deadline=None)
@given(
    plan=st.sampled_from(["starter", "professional", "enterprise"]),
    licensed=st.integers(1, 1000),
    active=st.integers(0, 2000),
    available=st.integers(1, 100),
    adopted_share=st.floats(0, 1),
    health=st.none() | st.floats(0, 100),
    usage=st.lists(st.floats(0, 1e5), max_size=10),
)
def test_bounds(**kw: Any) -> None:
    a = ExpansionInput(
        plan_tier=kw["plan"],
        licensed_seats=kw["licensed"],
        active_seats=kw["active"],
        features_available=kw["available"],
        features_adopted=int(kw["adopted_share"] * kw["available"]),
        health=kw["health"],
        usage=kw["usage"],
    )
    fw = default_framework()
    result = score_expansion(a, fw)
    assert 0 <= result.score <= 100
    for name in ("seat_utilisation", "feature_adoption", "plan_headroom", "health", "usage_growth"):
        assert 0 <= getattr(result.breakdown, name).value <= 100
    assert result.motion in ("seat_expansion", "plan_upgrade", "cross_sell", "none")


def test_deterministic_across_processes() -> None:
    """Another interpreter (another hash seed) gives the same scores and drivers, in order."""
    assert in_another_process(expansion_scores) == here(expansion_scores)


def test_deterministic_pinned_score(fw: Framework) -> None:
    a = account(active_seats=92, features_adopted=15, health=None, churn_risk=25)
    result = score_expansion(a.model_copy(update={"usage": [100, 120, 150, 160]}), fw)
    assert (result.score, result.motion) == (81, "seat_expansion")
    assert result.drivers == (
        "92% of licensed seats in use (92/100)",
        "Uses 15 of 20 available features (75%)",
        "Account health 75/100 (from churn risk)",
        "Usage up 41%",
        "On the professional plan (headroom 60/100)",
    )


# -- monotonicity: each signal of expansion potential moves the score one way only -----------

PLANS = ["starter", "professional", "enterprise"]
INDUSTRIES = [None, "healthcare", "Financial Services", "technology", "retail"]


@st.composite
def expansion_inputs(draw: st.DrawFn) -> ExpansionInput:
    available = draw(st.integers(1, 100))
    health = draw(st.none() | st.floats(0, 100))
    return ExpansionInput(
        industry=draw(st.sampled_from(INDUSTRIES)),
        plan_tier=draw(st.sampled_from(PLANS)),
        licensed_seats=draw(st.integers(1, 1000)),
        active_seats=draw(st.integers(0, 2000)),
        features_available=available,
        features_adopted=draw(st.integers(0, available)),
        health=health,
        churn_risk=None if health is not None else draw(st.none() | st.floats(0, 100)),
        usage=draw(st.lists(st.floats(0, 1e5), max_size=8)),
        usage_growth=draw(st.none() | st.floats(-1, 5)),
    )


def scores(a: ExpansionInput, b: ExpansionInput) -> tuple[ExpansionResult, ExpansionResult]:
    fw = default_framework()
    return score_expansion(a, fw), score_expansion(b, fw)


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.integers(1, 1000))
def test_more_active_seats_never_lower_the_score(a: ExpansionInput, more: int) -> None:
    low, high = scores(a, a.model_copy(update={"active_seats": a.active_seats + more}))
    assert high.breakdown.seat_utilisation.value >= low.breakdown.seat_utilisation.value
    assert high.score >= low.score


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.integers(1, 1000))
def test_more_licensed_seats_for_the_same_use_never_raise_the_score(
    a: ExpansionInput, more: int
) -> None:
    low, high = scores(a, a.model_copy(update={"licensed_seats": a.licensed_seats + more}))
    assert high.breakdown.seat_utilisation.value <= low.breakdown.seat_utilisation.value
    assert high.score <= low.score


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.integers(1, 100))
def test_more_features_adopted_never_lower_the_score(a: ExpansionInput, more: int) -> None:
    adopted = min(a.features_available, a.features_adopted + more)
    low, high = scores(a, a.model_copy(update={"features_adopted": adopted}))
    assert high.breakdown.feature_adoption.value >= low.breakdown.feature_adoption.value
    assert high.score >= low.score


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.floats(0, 100), st.floats(0, 100))
def test_higher_churn_risk_never_raises_the_score(a: ExpansionInput, r1: float, r2: float) -> None:
    lower, higher = sorted((r1, r2))
    safe, risky = scores(
        a.model_copy(update={"health": None, "churn_risk": lower}),
        a.model_copy(update={"health": None, "churn_risk": higher}),
    )
    assert risky.breakdown.health.value <= safe.breakdown.health.value
    assert risky.score <= safe.score
    # a churn risk counts as the health it leaves
    given_health = score_expansion(
        a.model_copy(update={"health": 100 - higher, "churn_risk": None}), default_framework()
    )
    assert given_health.score == risky.score


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.floats(-1, 5), st.floats(-1, 5))
def test_faster_usage_growth_never_lowers_the_score(
    a: ExpansionInput, g1: float, g2: float
) -> None:
    slower, faster = sorted((g1, g2))
    low, high = scores(
        a.model_copy(update={"usage_growth": slower}),
        a.model_copy(update={"usage_growth": faster}),
    )
    assert high.breakdown.usage_growth.value >= low.breakdown.usage_growth.value
    assert high.score >= low.score


@settings(max_examples=100, deadline=None)
@given(expansion_inputs(), st.lists(st.floats(0, 1e5), min_size=1, max_size=4))
def test_a_rising_usage_history_never_scores_below_a_falling_one(
    a: ExpansionInput, periods: list[float]
) -> None:
    rising = sorted(periods) + [max(periods) + 1] * len(periods)
    low, high = scores(
        a.model_copy(update={"usage_growth": None, "usage": rising[::-1]}),
        a.model_copy(update={"usage_growth": None, "usage": rising}),
    )
    assert high.breakdown.usage_growth.value >= 50 >= low.breakdown.usage_growth.value
    assert high.score >= low.score
