from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.engine import ExpansionInput, Framework, score_expansion
from worker.engine.framework import default_framework

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
    for bad in (
        {"features_adopted": 21},
        {"health": 50, "churn_risk": 50},
        {"licensed_seats": 0},
        {"usage": [1, -1]},
    ):
        with pytest.raises(ValidationError):
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
    assert score_expansion(a, fw) == result
