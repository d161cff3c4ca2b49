"""Worked examples for deal health and close probability.

Expectations are computed here from the documented formulas (worker/engine/deal.py) and the
framework's numbers, never copied from the engine's output.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from schemas.deal_events import DealStage
from worker.engine import DealFacts, DealScore, Framework, score_deal
from worker.engine import deal as deal_engine

from ._helpers import NOW, days_ago, make_facts, round_half_up


def velocity_of(days: float, norm: float, zero_multiple: float) -> float:
    zero = norm * zero_multiple
    if days <= norm:
        return 100.0
    if days >= zero:
        return 0.0
    return 100.0 * (zero - days) / (zero - norm)


def test_worked_example_default_industry(fw: Framework) -> None:
    p = fw.defaults.params
    h, pr = p.health, p.probability
    facts = make_facts(
        stage=DealStage.proposal,
        stage_entered_at=days_ago(35),
        last_activity_at=days_ago(5),
        created_at=days_ago(70),
        interactions=15,
        budget_confirmed=True,
        has_champion=False,
        decision_maker_engaged=True,
        lead_score=80,
        objections_handled=2,
        competitors=1,
        close_date_pushes=1,
        expected_close_date=(NOW - timedelta(days=3)).date(),
    )
    score = score_deal(facts, NOW, fw)

    norm = p.stages.proposal.norm_days
    assert norm < 35 < norm * h.velocity.zero_at_norm_multiple  # on the linear part
    velocity = velocity_of(35, norm, h.velocity.zero_at_norm_multiple)

    e = h.engagement
    assert e.recency_full_days < 5 < e.recency_zero_days
    recency = 100 * (e.recency_zero_days - 5) / (e.recency_zero_days - e.recency_full_days)
    per_week = 15 / (70 / 7)
    frequency = min(100.0, 100 * per_week / e.target_interactions_per_week)
    engagement = e.recency_weight * recency + e.frequency_weight * frequency

    q = h.qualification
    qualification = q.budget_points + q.decision_maker_points + q.lead_score_points * 80 / 100

    s = h.slippage
    slippage = (
        100
        - min(s.max_push_penalty, s.points_per_push * 1)
        - min(s.max_overdue_penalty, s.points_per_overdue_day * 3)
    )

    w = h.weights
    weighted = (
        w.velocity * velocity
        + w.engagement * engagement
        + w.qualification * qualification
        + w.slippage * slippage
    )
    c = score.health.components
    assert c.velocity == pytest.approx(velocity)
    assert c.engagement == pytest.approx(engagement)
    assert c.qualification == pytest.approx(qualification)
    assert c.slippage == pytest.approx(slippage)
    assert score.health.score == round_half_up(weighted)
    assert score.health.category == (
        "healthy"
        if score.health.score >= h.categories.healthy_min
        else "warning"
        if score.health.score >= h.categories.warning_min
        else "critical"
    )
    m = score.health.measures
    assert m is not None
    assert m.days_in_stage == pytest.approx(35)
    assert m.days_overdue == 3
    assert m.interactions_per_week == pytest.approx(per_week)
    assert score.health.risk_factors == (
        f"Stagnant in proposal for 35 days (norm {norm:g})",
        "No champion identified",
        "Expected close date passed 3 days ago",
    )

    base = p.stages.proposal.base_rate
    eng_boost = round(pr.engagement_max_boost * engagement / 100, 2)
    qual_boost = round(
        pr.budget_points
        + pr.decision_maker_points
        + pr.lead_score_points * 80 / 100
        + pr.objection_points * min(2, pr.max_objections),
        2,
    )
    vel_penalty = round(-pr.velocity_max_penalty * (100 - velocity) / 100, 2)
    comp_penalty = round(-min(pr.max_competition_penalty, pr.competitor_points * 1), 2)
    raw = round(base + eng_boost + qual_boost + vel_penalty + comp_penalty, 2)
    assert pr.min_open < raw < pr.max_open
    b = score.probability.breakdown
    assert (b.stage_base_rate, b.engagement_boost, b.qualification_boost) == (
        base,
        eng_boost,
        qual_boost,
    )
    assert b.velocity_penalty == pytest.approx(vel_penalty)
    assert b.competition_penalty == comp_penalty
    assert b.raw == pytest.approx(raw)
    assert score.probability.probability == pytest.approx(raw)
    assert b.clamp_adjustment == 0
    assert not score.probability.clamped
    # all five confidence signals present
    assert score.probability.confidence == "high"
    assert score.probability.key_factors[0] == (f"Proposal stage: {base:g}% of such deals are won")
    assert "No champion identified (0 of 6 pts)" in score.probability.key_factors
    assert "1 competitor in the deal (-4 pts)" in score.probability.key_factors
    assert score.framework_version == fw.version


def test_struggling_deal_reports_its_risks_in_words(fw: Framework) -> None:
    p = fw.defaults.params
    facts = make_facts(
        stage=DealStage.proposal,
        stage_entered_at=days_ago(75),
        last_activity_at=days_ago(21),
        created_at=days_ago(120),
        interactions=12,
        decision_maker_engaged=False,
        close_date_pushes=3,
        expected_close_date=(NOW - timedelta(days=12)).date(),
    )
    health = score_deal(facts, NOW, fw).health
    norm = p.stages.proposal.norm_days
    for sentence in (
        f"Stagnant in proposal for 75 days (norm {norm:g})",
        "No activity for 21 days",
        "Close date pushed 3 times",
        "No decision maker engaged",
        "Expected close date passed 12 days ago",
    ):
        assert sentence in health.risk_factors
    assert health.components.velocity == 0  # 75 days > 3 x 21
    assert health.category == "critical"


def test_never_any_activity_measures_from_creation(fw: Framework) -> None:
    facts = make_facts(last_activity_at=None, interactions=0, created_at=days_ago(20))
    health = score_deal(facts, NOW, fw).health
    assert health.measures is not None
    assert health.measures.days_since_activity == pytest.approx(20)
    assert "No activity since the deal was created 20 days ago" in health.risk_factors
    e = fw.defaults.params.health.engagement
    recency = 100 * (e.recency_zero_days - 20) / (e.recency_zero_days - e.recency_full_days)
    assert health.components.engagement == pytest.approx(e.recency_weight * recency)


def test_velocity_is_full_within_the_norm_and_zero_past_the_limit(fw: Framework) -> None:
    p = fw.defaults.params
    norm = p.stages.negotiation.norm_days
    zero = norm * p.health.velocity.zero_at_norm_multiple
    at_norm = make_facts(stage=DealStage.negotiation, stage_entered_at=days_ago(norm))
    past = make_facts(stage=DealStage.negotiation, stage_entered_at=days_ago(zero + 1))
    assert score_deal(at_norm, NOW, fw).health.components.velocity == 100
    assert score_deal(past, NOW, fw).health.components.velocity == 0


def test_timestamps_after_now_count_as_zero_days(fw: Framework) -> None:
    future = NOW + timedelta(days=3)
    facts = make_facts(stage_entered_at=future, last_activity_at=future, created_at=future)
    m = score_deal(facts, NOW, fw).health.measures
    assert m is not None
    assert (m.days_in_stage, m.days_since_activity) == (0, 0)


def test_vertical_norms_apply(fw: Framework) -> None:
    hc = fw.for_industry("healthcare").params.stages.proposal.norm_days
    default = fw.defaults.params.stages.proposal.norm_days
    assert hc > default
    days = (hc + default) / 2
    deal = make_facts(stage_entered_at=days_ago(days))
    assert score_deal(deal, NOW, fw).health.components.velocity < 100
    in_healthcare = make_facts(stage_entered_at=days_ago(days), industry="HealthCare")
    assert score_deal(in_healthcare, NOW, fw).health.components.velocity == 100


def test_qualification_risks_only_where_the_stage_expects_them(fw: Framework) -> None:
    unqualified = {"budget_confirmed": False, "has_champion": False}
    early = score_deal(make_facts(stage=DealStage.prospecting, **unqualified), NOW, fw)
    late = score_deal(make_facts(stage=DealStage.negotiation, **unqualified), NOW, fw)
    assert fw.defaults.params.stages.negotiation.qualification_expected
    assert not fw.defaults.params.stages.prospecting.qualification_expected
    assert "Budget not confirmed" not in early.health.risk_factors
    assert "Budget not confirmed" in late.health.risk_factors
    # the same facts count the same, except that an early stage does not fall below its floor
    floor = fw.defaults.params.stages.prospecting.qualification_floor
    assert early.health.components.qualification == max(late.health.components.qualification, floor)


def test_a_new_unqualified_prospect_is_healthy(fw: Framework) -> None:
    """Early stages are not expected to be qualified: a fresh prospect is not at risk."""
    fresh = make_facts(
        stage=DealStage.prospecting,
        budget_confirmed=False,
        has_champion=False,
        decision_maker_engaged=False,
        lead_score=None,
        interactions=0,
        last_activity_at=None,
        created_at=NOW,
        stage_entered_at=NOW,
        close_date_pushes=0,
        expected_close_date=None,
    )
    health = score_deal(fresh, NOW, fw).health
    floor = fw.defaults.params.stages.prospecting.qualification_floor
    assert health.components.qualification == floor
    assert health.category == "healthy"


def test_low_lead_score_and_unknown_lead_score(fw: Framework) -> None:
    q = fw.defaults.params.health.qualification
    low = score_deal(make_facts(lead_score=10), NOW, fw)
    assert "Low lead score (10/100)" in low.health.risk_factors
    unknown = score_deal(make_facts(lead_score=None), NOW, fw)
    expected = (
        q.budget_points
        + q.champion_points
        + q.decision_maker_points
        + q.lead_score_points * q.unknown_lead_score / 100
    )
    assert unknown.health.components.qualification == pytest.approx(expected)
    assert unknown.probability.breakdown.qualification_boost == pytest.approx(
        round(
            fw.defaults.params.probability.budget_points
            + fw.defaults.params.probability.decision_maker_points
            + fw.defaults.params.probability.champion_points
            + fw.defaults.params.probability.objection_points * 1,
            2,
        )
    )


def test_probability_is_capped_for_a_near_certain_deal(fw: Framework) -> None:
    pr = fw.defaults.params.probability
    facts = make_facts(
        stage=DealStage.negotiation, lead_score=100, objections_handled=10, interactions=100
    )
    prob = score_deal(facts, NOW, fw).probability
    assert prob.breakdown.raw > pr.max_open
    assert prob.probability == pr.max_open
    assert prob.clamped
    assert prob.breakdown.clamp_adjustment == pytest.approx(pr.max_open - prob.breakdown.raw)
    assert prob.key_factors[-1] == f"Capped at {pr.max_open:g}%: an open deal is never certain"


def test_probability_is_floored_for_a_hopeless_deal(fw: Framework) -> None:
    pr = fw.defaults.params.probability
    facts = make_facts(
        stage=DealStage.prospecting,
        lead_score=None,
        objections_handled=0,
        interactions=0,
        has_champion=False,
        budget_confirmed=False,
        decision_maker_engaged=False,
        competitors=5,
        last_activity_at=None,
        created_at=days_ago(200),
        stage_entered_at=days_ago(200),
    )
    prob = score_deal(facts, NOW, fw).probability
    assert prob.breakdown.raw < pr.min_open
    assert prob.probability == pr.min_open
    assert prob.clamped
    assert prob.breakdown.raw + prob.breakdown.clamp_adjustment == pytest.approx(pr.min_open)
    assert prob.confidence == "low"


@pytest.mark.parametrize(
    ("stage", "probability", "health", "category"),
    [(DealStage.closed_won, 100.0, 100, "healthy"), (DealStage.closed_lost, 0.0, 0, "critical")],
)
def test_closed_deals(
    fw: Framework, stage: DealStage, probability: float, health: int, category: str
) -> None:
    score = score_deal(make_facts(stage=stage, competitors=4), NOW, fw)
    assert score.probability.probability == probability
    assert score.probability.breakdown.raw == probability
    assert score.probability.confidence == "high"
    assert score.health.score == health
    assert score.health.category == category
    assert score.health.measures is None
    assert (stage is DealStage.closed_won) == (score.health.risk_factors == ())
    # independent of the deal's facts
    other = make_facts(stage=stage, stage_entered_at=days_ago(400), budget_confirmed=False)
    assert score_deal(other, NOW, fw) == score


def test_to_dict_is_json_ready(fw: Framework) -> None:
    for stage in DealStage:
        data = score_deal(make_facts(stage=stage), NOW, fw).to_dict()
        assert json.loads(json.dumps(data)) == data
        assert set(data) == {"framework_version", "health", "probability"}
        assert set(data["health"]["components"]) == {
            "velocity",
            "engagement",
            "qualification",
            "slippage",
            "weights",
        }
        assert set(data["probability"]["breakdown"]) == {
            "stage_base_rate",
            "engagement_boost",
            "qualification_boost",
            "velocity_penalty",
            "competition_penalty",
            "raw",
            "clamp_adjustment",
        }


def test_from_record_accepts_state_like_objects(fw: Framework) -> None:
    facts = make_facts()
    record = SimpleNamespace(
        **{name: getattr(facts, name) for name in DealFacts.__slots__},
    )
    record.competitors = ("Acme", "Globex")
    record.amount = 12_000  # e.g. a Decimal or int
    record.stage = "proposal"
    got = DealFacts.from_record(record)
    assert got.competitors == 2
    assert got.stage is DealStage.proposal
    assert isinstance(score_deal(got, NOW, fw), DealScore)


# the engine builds its results with fast positional constructors (deal._new_*), not __init__
FAST_CONSTRUCTORS = {
    "_new_components": deal_engine.HealthComponents,
    "_new_measures": deal_engine.HealthMeasures,
    "_new_health": deal_engine.HealthResult,
    "_new_breakdown": deal_engine.ProbabilityBreakdown,
    "_new_probability": deal_engine.ProbabilityResult,
    "_new_score": DealScore,
}


def test_fast_constructors_equal_regular_construction() -> None:
    assert {n for n in vars(deal_engine) if n.startswith("_new_")} == set(FAST_CONSTRUCTORS)
    for name, cls in FAST_CONSTRUCTORS.items():
        names = [f.name for f in dataclasses.fields(cls)]
        values = [f"{cls.__name__}.{n}" for n in names]  # a distinct value per field
        fast = getattr(deal_engine, name)(*values)
        assert type(fast) is cls
        assert fast == cls(*values), name
        assert [getattr(fast, n) for n in names] == values, name  # each value in its own field
        assert not hasattr(fast, "__dict__")  # slots only, like regular instances
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, names[0], None)


def test_results_hold_each_measure_in_its_own_field(fw: Framework) -> None:
    facts = make_facts(close_date_pushes=2, expected_close_date=(NOW - timedelta(days=3)).date())
    score = score_deal(facts, NOW, fw)
    proposal = fw.for_industry(None).deal.stages[DealStage.proposal]
    m = score.health.measures
    assert (m.days_in_stage, m.stage_norm_days, m.days_since_activity) == (
        5.0,
        proposal.norm_days,
        1.0,
    )
    assert (m.days_overdue, m.close_date_pushes) == (3, 2)
    c = score.health.components
    assert c.velocity == 100.0 > c.slippage  # within the stage norm; pushed and overdue
    assert isinstance(score.health.score, int) and score.health.category == "healthy"
    b = score.probability.breakdown
    assert b.stage_base_rate == proposal.base_rate
    assert b.velocity_penalty == 0 == b.competition_penalty
    assert isinstance(score.probability.probability, float)
    assert score.probability.confidence == "high" and score.framework_version == fw.version
