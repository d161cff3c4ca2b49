"""Property-based tests of score_deal: bounds, consistency, determinism, monotonicity."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.deal_events import CLOSED_STAGES, OPEN_STAGES, DealStage
from worker.engine import DealFacts, load_framework, score_deal
from worker.engine.framework import default_framework

from ._determinism import deal_scores, here, in_another_process
from ._helpers import NOW, days_ago, make_facts, round_half_up

FW = default_framework()
INDUSTRIES = [None, "healthcare", "HEALTHCARE", "Financial Services", "technology", "Retail", "x"]
SECONDS = st.integers(min_value=-5 * 86400, max_value=1500 * 86400)  # negative: after "now"


def ago(seconds: int) -> datetime:
    return NOW - timedelta(seconds=seconds)


@st.composite
def deals(draw: st.DrawFn, stages: list[DealStage] | None = None) -> DealFacts:
    return DealFacts(
        stage=draw(st.sampled_from(stages or list(DealStage))),
        amount=draw(st.none() | st.floats(0, 1e9)),
        industry=draw(st.sampled_from(INDUSTRIES)),
        lead_score=draw(st.none() | st.integers(0, 100)),
        interactions=draw(st.integers(0, 5000)),
        objections_handled=draw(st.integers(0, 50)),
        has_champion=draw(st.booleans()),
        budget_confirmed=draw(st.booleans()),
        decision_maker_engaged=draw(st.booleans()),
        competitors=draw(st.integers(0, 20)),
        last_activity_at=draw(st.none() | SECONDS.map(ago)),
        stage_entered_at=ago(draw(SECONDS)),
        created_at=ago(draw(SECONDS)),
        expected_close_date=draw(
            st.none() | st.integers(-1000, 1000).map(lambda d: NOW.date() + timedelta(days=d))
        ),
        close_date_pushes=draw(st.integers(0, 30)),
    )


open_deals = deals(list(OPEN_STAGES))


@settings(max_examples=400, deadline=None)
@given(deals())
def test_bounds_and_consistency(facts: DealFacts) -> None:
    score = score_deal(facts, NOW, FW)
    health, prob = score.health, score.probability
    t = FW.for_industry(facts.industry).deal

    assert isinstance(health.score, int)
    assert 0 <= health.score <= 100
    c = health.components
    for value in (c.velocity, c.engagement, c.qualification, c.slippage):
        assert 0 <= value <= 100
    weighted = (
        c.weights.velocity * c.velocity
        + c.weights.engagement * c.engagement
        + c.weights.qualification * c.qualification
        + c.weights.slippage * c.slippage
    )
    assert health.score == min(100, round_half_up(weighted))
    expected_category = (
        "healthy"
        if health.score >= t.healthy_min
        else "warning"
        if health.score >= t.warning_min
        else "critical"
    )
    assert health.category == expected_category

    b = prob.breakdown
    assert b.raw == pytest.approx(
        b.stage_base_rate
        + b.engagement_boost
        + b.qualification_boost
        + b.velocity_penalty
        + b.competition_penalty,
        abs=1e-9,
    )
    assert prob.probability == pytest.approx(b.raw + b.clamp_adjustment, abs=1e-9)
    assert prob.clamped == (b.clamp_adjustment != 0)
    assert b.velocity_penalty <= 0
    assert b.competition_penalty <= 0
    assert b.engagement_boost >= 0
    assert b.qualification_boost >= 0
    if facts.stage in CLOSED_STAGES:
        assert prob.probability == (100.0 if facts.stage is DealStage.closed_won else 0.0)
    else:
        assert 1 <= prob.probability <= 99
    assert prob.confidence in ("low", "medium", "high")
    assert all(isinstance(s, str) and s for s in (*health.risk_factors, *prob.key_factors))


@settings(max_examples=100, deadline=None)
@given(deals())
def test_caches_and_framework_instances_do_not_change_a_score(facts: DealFacts) -> None:
    first = score_deal(facts, NOW, FW)  # fills the framework's memo (closed stages)
    assert score_deal(facts, NOW, FW) == first
    assert score_deal(facts, NOW, load_framework()) == first
    assert first.to_dict() == score_deal(dataclasses.replace(facts), NOW, FW).to_dict()


def test_deterministic_across_processes() -> None:
    """Another interpreter (another hash seed) gives the same scores, in the same order."""
    assert in_another_process(deal_scores) == here(deal_scores)


def test_deterministic_pinned_scores() -> None:
    """Values computed once and written down: a score that depends on the process (or that
    changed by accident) differs from them."""
    facts = make_facts(
        industry="Healthcare",
        has_champion=False,
        budget_confirmed=False,
        lead_score=20,
        competitors=2,
        last_activity_at=days_ago(30),
        stage_entered_at=days_ago(60),
        close_date_pushes=3,
        expected_close_date=(NOW - timedelta(days=10)).date(),
    )
    score = score_deal(facts, NOW, FW)
    assert (score.health.score, score.health.category) == (45, "warning")
    assert score.health.risk_factors == (
        "Stagnant in proposal for 60 days (norm 35)",
        "No activity for 30 days",
        "Budget not confirmed",
        "No champion identified",
        "Low lead score (20/100)",
        "Close date pushed 3 times",
        "Expected close date passed 10 days ago",
    )
    assert (score.probability.probability, score.probability.confidence) == (40.84, "high")
    assert score.probability.key_factors == (
        "Proposal stage: 40% of such deals are won",
        "Budget not confirmed (0 of 8 pts)",
        "Decision maker engaged (+8 pts)",
        "2 competitors in the deal (-8 pts)",
        "No champion identified (0 of 6 pts)",
        "60 days in proposal, norm 35 (-5.4 pts)",
        "Engagement 40/100 (+4 pts)",
        "Lead score 20/100 (+1.2 pts)",
        "1 objection handled (+1 pts)",
    )
    healthy = score_deal(make_facts(), NOW, FW)
    assert (healthy.health.score, healthy.health.category) == (98, "healthy")
    assert healthy.health.risk_factors == ()
    assert healthy.probability.probability == 76.6


@settings(max_examples=300, deadline=None)
@given(open_deals, SECONDS, st.integers(0, 400 * 86400))
def test_more_recent_activity_never_lowers_engagement(
    facts: DealFacts, last: int, sooner: int
) -> None:
    older = dataclasses.replace(facts, last_activity_at=ago(last))
    newer = dataclasses.replace(facts, last_activity_at=ago(last - sooner))
    a, b = score_deal(older, NOW, FW), score_deal(newer, NOW, FW)
    assert b.health.components.engagement >= a.health.components.engagement
    assert b.health.score >= a.health.score
    assert b.probability.probability >= a.probability.probability


@settings(max_examples=300, deadline=None)
@given(open_deals, st.integers(1, 400 * 86400))
def test_a_longer_stall_never_raises_health(facts: DealFacts, longer: int) -> None:
    stalled = dataclasses.replace(
        facts, stage_entered_at=facts.stage_entered_at - timedelta(seconds=longer)
    )
    a, b = score_deal(facts, NOW, FW), score_deal(stalled, NOW, FW)
    assert b.health.score <= a.health.score
    assert b.health.components.velocity <= a.health.components.velocity
    assert b.probability.probability <= a.probability.probability


@settings(max_examples=300, deadline=None)
@given(open_deals, st.integers(1, 400 * 86400))
def test_time_passing_never_raises_health(facts: DealFacts, later: int) -> None:
    a = score_deal(facts, NOW, FW)
    b = score_deal(facts, NOW + timedelta(seconds=later), FW)
    assert b.health.score <= a.health.score


@settings(max_examples=300, deadline=None)
@given(deals())
def test_confirming_budget_never_lowers_probability(facts: DealFacts) -> None:
    without = score_deal(dataclasses.replace(facts, budget_confirmed=False), NOW, FW)
    with_budget = score_deal(dataclasses.replace(facts, budget_confirmed=True), NOW, FW)
    assert with_budget.probability.probability >= without.probability.probability
    assert with_budget.health.score >= without.health.score


@settings(max_examples=200, deadline=None)
@given(open_deals, st.integers(0, 10))
def test_more_competitors_never_raise_probability(facts: DealFacts, more: int) -> None:
    a = score_deal(facts, NOW, FW)
    b = score_deal(dataclasses.replace(facts, competitors=facts.competitors + more), NOW, FW)
    assert b.probability.probability <= a.probability.probability
