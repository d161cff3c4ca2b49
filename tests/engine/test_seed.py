"""The seed's close-probability body, read as ours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.engine import DealInput, default_framework, score_deal
from worker.engine.seed import deal_input_from_seed

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SEED = {
    "deal_stage": "Proposal",
    "deal_value": 40000,
    "days_in_stage": 12,
    "deal_age_days": 40,
    "num_interactions": 5,
    "days_since_last_activity": 3,
    "days_to_close": 30,
    "has_champion": True,
    "lead_score": 60,
}


def test_a_seed_body_becomes_our_deal_input():
    deal = DealInput.model_validate(deal_input_from_seed(SEED, NOW))
    assert deal.stage == "proposal" and deal.amount == 40000 and deal.interactions == 5
    assert (deal.as_of - deal.stage_entered_at).days == 12
    assert (deal.as_of - deal.created_at).days == 40
    assert (deal.as_of - deal.last_activity_at).days == 3
    assert deal.expected_close_date.isoformat() == "2026-03-31"


def test_it_scores_like_the_same_deal_written_our_way():
    ours = DealInput.model_validate(
        {
            "stage": "proposal",
            "amount": 40000,
            "interactions": 5,
            "has_champion": True,
            "lead_score": 60,
            "as_of": "2026-03-01T00:00:00Z",
            "stage_entered_at": "2026-02-17T00:00:00Z",
            "created_at": "2026-01-20T00:00:00Z",
            "last_activity_at": "2026-02-26T00:00:00Z",
            "expected_close_date": "2026-03-31",
        }
    )
    seed = DealInput.model_validate(deal_input_from_seed(SEED, NOW))
    fw = default_framework()
    a = score_deal(ours.to_facts(), ours.as_of, fw).probability
    b = score_deal(seed.to_facts(), seed.as_of, fw).probability
    assert a.to_dict() == b.to_dict()


def test_as_of_in_the_body_wins_and_ours_passes_unchanged():
    body = {**SEED, "as_of": "2026-01-01T00:00:00+00:00"}
    assert deal_input_from_seed(body, NOW)["as_of"].startswith("2026-01-01")
    ours = {"stage": "proposal", "as_of": "x"}
    assert deal_input_from_seed(ours, NOW) is ours


def test_closed_won_spellings_and_bad_days():
    assert deal_input_from_seed({"deal_stage": "Closed Won"}, NOW)["stage"] == "closed_won"
    with pytest.raises(ValueError, match="days_in_stage"):
        deal_input_from_seed({"deal_stage": "proposal", "days_in_stage": -1}, NOW)
