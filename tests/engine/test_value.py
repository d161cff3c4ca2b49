from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.deal_events import DealStage
from worker.engine import (
    DealValueInput,
    Framework,
    predict_deal_value,
    predict_value_for_deal,
)
from worker.engine.framework import default_framework

from ._errors import one_validation_error


def test_worked_example(fw: Framework) -> None:
    inputs = DealValueInput(
        plan="Professional",
        users=30,
        discount=0.1,
        billing_cycle="annual",
        contract_term_months=24,
        industry="healthcare",
        stage=DealStage.proposal,
        similar_deals_avg_acv=20_000,
        expansion_potential="medium",
    )
    vp = fw.for_industry("healthcare").params.value
    price = vp.plans["professional"].list_price_per_user
    cycle = vp.billing_cycles.annual
    base = 30 * price * (1 - 0.1) * (1 - cycle.discount) * 24 * cycle.multiplier
    expansion = vp.expansion_levels.medium
    model = (
        base
        * vp.industry_factor
        * vp.stage_factors.proposal
        * (1 + vp.expansion_max_uplift * expansion)
    )
    similar = 20_000 * 24 / 12
    w = vp.similar_deals_weight
    expected = (1 - w) * model + w * similar

    result = predict_deal_value(inputs, fw)
    assert result.predicted_value == round(expected, 2)
    assert result.annual_value == round(expected * 12 / 24, 2)
    assert result.method == "pricing"
    b = result.breakdown
    assert b.price_source == "plan"
    assert b.base_value == pytest.approx(base)
    assert b.industry_factor == vp.industry_factor != 1.0
    assert b.similar_deals_value == pytest.approx(similar)
    assert b.blend_weight == w
    assert result.framework_version == fw.version
    assert any("negotiated discount" in note for note in result.notes)


def breakdown_reproduces(result) -> None:  # type: ignore[no-untyped-def]
    b = result.breakdown
    base = (
        b.users
        * b.list_price_per_user
        * (1 - b.discount)
        * (1 - b.billing_discount)
        * b.contract_term_months
        * b.billing_multiplier
    )
    if b.price_source in ("input", "plan"):  # priced; else the base is an average ACV
        assert b.base_value == pytest.approx(base, rel=1e-12, abs=1e-9)
    model = b.base_value * b.industry_factor * b.stage_factor * b.expansion_factor
    assert b.model_value == pytest.approx(model, rel=1e-12, abs=1e-9)
    blended = (1 - b.blend_weight) * b.model_value + b.blend_weight * (b.similar_deals_value or 0.0)
    assert result.predicted_value == pytest.approx(blended, abs=0.005 + 1e-9 * blended)


def test_no_similar_deals_means_no_blend(fw: Framework) -> None:
    result = predict_deal_value(DealValueInput(plan="starter", users=10), fw)
    vp = fw.defaults.params.value
    b = result.breakdown
    assert b.blend_weight == 0 and b.similar_deals_value is None
    assert b.stage_factor == 1.0  # no stage given
    expected = (
        10
        * vp.plans["starter"].list_price_per_user
        * (1 - vp.billing_cycles.annual.discount)
        * 12
        * vp.billing_cycles.annual.multiplier
    )
    assert result.predicted_value == round(expected, 2)
    breakdown_reproduces(result)


def test_explicit_price_wins_and_unknown_plan_needs_one(fw: Framework) -> None:
    with pytest.raises(ValueError, match="unknown plan 'platinum'"):
        predict_deal_value(DealValueInput(plan="Platinum", users=5), fw)
    result = predict_deal_value(
        DealValueInput(plan="Platinum", users=5, list_price_per_user=200, billing_cycle="monthly"),
        fw,
    )
    m = fw.defaults.params.value.billing_cycles.monthly
    assert result.breakdown.price_source == "input"
    assert result.predicted_value == round(5 * 200 * (1 - m.discount) * 12 * m.multiplier, 2)


def test_expansion_words_map_to_framework_levels(fw: Framework) -> None:
    vp = fw.defaults.params.value
    word = predict_deal_value(
        DealValueInput(plan="starter", users=3, expansion_potential="high"), fw
    )
    number = predict_deal_value(
        DealValueInput(plan="starter", users=3, expansion_potential=vp.expansion_levels.high), fw
    )
    assert word.predicted_value == number.predicted_value
    assert word.breakdown.expansion_factor == 1 + vp.expansion_max_uplift * vp.expansion_levels.high


def test_confidence(fw: Framework) -> None:
    c = fw.defaults.params.value.confidence
    assert (c.high_min_signals, c.medium_min_signals) == (3, 2)
    low = predict_deal_value(DealValueInput(plan="starter", users=3), fw)
    assert low.confidence == "low"  # no signal
    agreeing = predict_deal_value(
        DealValueInput(plan="starter", users=10, stage="negotiation", similar_deals_avg_acv=2_500),
        fw,
    )
    # similar given + agrees with the model + late stage = 3 signals
    model = agreeing.breakdown.model_value
    assert abs(agreeing.breakdown.similar_deals_value - model) <= c.agreement_tolerance * model
    assert agreeing.confidence == "high"
    far = predict_deal_value(
        DealValueInput(plan="starter", users=10, stage="negotiation", similar_deals_avg_acv=90_000),
        fw,
    )
    assert far.confidence == "medium"


def one(message: str, field: str) -> str:
    return one_validation_error("DealValueInput", message, field)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"users": 0}, one("Input should be greater than or equal to 1", "users")),
        ({"discount": 1.5}, one("Input should be less than or equal to 1", "discount")),
        (
            {"billing_cycle": "weekly"},
            one("Input should be 'monthly', 'quarterly' or 'annual'", "billing_cycle"),
        ),
        (  # neither a 0-1 number nor a word: both alternatives of the union fail
            {"expansion_potential": "huge"},
            re.escape(
                "2 validation errors for DealValueInput\n"
                "expansion_potential.constrained-float\n"
                "  Input should be a valid number"
            )
            + r"(?s:.*)"
            + re.escape("  Input should be 'low', 'medium' or 'high'"),
        ),
        (
            {"contract_term_months": 0},
            one("Input should be greater than or equal to 1", "contract_term_months"),
        ),
        ({"colour": "red"}, one("Extra inputs are not permitted", "colour")),
    ],
)
def test_input_validation(bad: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        DealValueInput.model_validate({"plan": "starter", "users": 1, **bad})


@settings(max_examples=200, deadline=None)
@given(
    plan=st.sampled_from(["starter", "professional", "enterprise"]),
    users=st.integers(1, 100_000),
    price=st.none() | st.floats(0, 10_000),
    discount=st.floats(0, 1),
    cycle=st.sampled_from(["monthly", "quarterly", "annual"]),
    term=st.integers(1, 120),
    industry=st.sampled_from([None, "healthcare", "Financial Services", "retail", "other"]),
    stage=st.none() | st.sampled_from(list(DealStage)),
    similar=st.none() | st.floats(0, 1e7),
    expansion=st.floats(0, 1) | st.sampled_from(["low", "medium", "high"]),
)
def test_breakdown_multiplies_out_to_the_prediction(**kw) -> None:  # type: ignore[no-untyped-def]
    inputs = DealValueInput(
        plan=kw["plan"],
        users=kw["users"],
        list_price_per_user=kw["price"],
        discount=kw["discount"],
        billing_cycle=kw["cycle"],
        contract_term_months=kw["term"],
        industry=kw["industry"],
        stage=kw["stage"],
        similar_deals_avg_acv=kw["similar"],
        expansion_potential=kw["expansion"],
    )
    result = predict_deal_value(inputs, default_framework())
    assert result.predicted_value >= 0
    breakdown_reproduces(result)


def test_value_for_deal_without_amount(fw: Framework) -> None:
    vp_hc = fw.for_industry("healthcare").params.value
    default = predict_value_for_deal("Healthcare", DealStage.prospecting, None, fw)
    assert default.method == "framework_default"
    assert default.predicted_value == round(vp_hc.default_acv * vp_hc.industry_factor, 2)
    assert default.confidence == "low"
    breakdown_reproduces(default)

    similar = predict_value_for_deal("Healthcare", DealStage.negotiation, 18_000, fw)
    assert similar.method == "similar_deals"
    assert similar.predicted_value == 18_000  # comparables already reflect the industry
    assert similar.confidence == "medium"  # similar deals + late stage
    breakdown_reproduces(similar)

    two_years = predict_value_for_deal(None, None, 18_000, fw, contract_term_months=24)
    assert two_years.predicted_value == 36_000
    assert two_years.annual_value == 18_000

    unknown = predict_value_for_deal("Mining", None, None, fw)
    assert unknown.predicted_value == fw.defaults.params.value.default_acv
    with pytest.raises(ValueError, match=r"^similar_avg must not be negative$"):
        predict_value_for_deal(None, None, -1, fw)
