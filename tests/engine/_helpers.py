"""Shared test data for the engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.deal_events import DealStage
from worker.engine import DealFacts

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def make_facts(**overrides: Any) -> DealFacts:
    """A healthy, fully qualified proposal-stage deal; override what the test is about."""
    fields: dict[str, Any] = {
        "stage": DealStage.proposal,
        "amount": 12_000.0,
        "industry": None,
        "lead_score": 60,
        "interactions": 20,
        "objections_handled": 1,
        "has_champion": True,
        "budget_confirmed": True,
        "decision_maker_engaged": True,
        "competitors": 0,
        "last_activity_at": days_ago(1),
        "stage_entered_at": days_ago(5),
        "created_at": days_ago(40),
        "expected_close_date": (NOW + timedelta(days=30)).date(),
        "close_date_pushes": 0,
    }
    fields.update(overrides)
    return DealFacts(**fields)


def round_half_up(x: float) -> int:
    return int(x + 0.5)
