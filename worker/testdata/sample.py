"""A small, realistic, deterministic deal event stream so a new user sees the system work.

Ten deals over twelve weeks (anchored at a fixed date, so the scores are reproducible): fast
movers, a stalled high-value proposal, a deal gone quiet, one whose close date keeps slipping,
wins and a loss. Event ids are fixed, so publishing it twice changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.deal_events import DealEvent, DealEventAdapter

ANCHOR = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
SOURCE = "revintel/sample"


def _ev(deal: str, n: int, day: int, kind: str, data: dict[str, Any]) -> DealEvent:
    return DealEventAdapter.validate_python(
        {
            "id": f"sample-{deal}-{n:02d}",
            "source": SOURCE,
            "type": f"deal.{kind}",
            "time": ANCHOR + timedelta(days=day, hours=n % 8),
            "subject": deal,
            "data": data,
        }
    )


def _deal(
    name: str, company: str, owner: str, industry: str, amount: int, close_day: int
) -> dict[str, Any]:
    return {
        "name": name,
        "company": company,
        "owner": owner,
        "industry": industry,
        "amount": amount,
        "currency": "USD",
        "stage": "prospecting",
        "expected_close_date": (ANCHOR.date() + timedelta(days=close_day)).isoformat(),
        "lead_score": 50,
    }


def sample_events() -> list[DealEvent]:
    """The stream, in time order."""
    events: list[DealEvent] = []

    def story(deal: str, base: dict[str, Any], steps: list[tuple[int, str, dict[str, Any]]]):
        events.append(_ev(deal, 0, 0, "created", base))
        for n, (day, kind, data) in enumerate(steps, start=1):
            events.append(_ev(deal, n, day, kind, data))

    def close(days: int) -> str:
        return (ANCHOR.date() + timedelta(days=days)).isoformat()

    call = {"kind": "call"}
    meeting = {"kind": "meeting"}
    # A model deal: qualified early, busy, moving fast.
    story(
        "D-1001",
        _deal("Platform rollout", "Acme Corp", "Dana Reyes", "technology", 48_000, 70),
        [
            (3, "activity_logged", meeting),
            (
                8,
                "stage_changed",
                {
                    "stage": "qualification",
                    "budget_confirmed": True,
                    "has_champion": True,
                    "lead_score": 80,
                },
            ),
            (15, "activity_logged", call),
            (22, "stage_changed", {"stage": "proposal", "decision_maker_engaged": True}),
            (30, "activity_logged", {"kind": "meeting", "objection_handled": True}),
            (38, "stage_changed", {"stage": "negotiation"}),
            (45, "activity_logged", call),
            (55, "closed_won", {"amount": 52_000}),
        ],
    )
    # High value, stuck in proposal, no decision maker, a competitor.
    story(
        "D-1002",
        _deal(
            "Data warehouse migration",
            "Globex",
            "Sam Okafor",
            "manufacturing",
            120_000,
            60,
        ),
        [
            (5, "activity_logged", call),
            (12, "stage_changed", {"stage": "qualification", "budget_confirmed": True}),
            (20, "stage_changed", {"stage": "proposal", "competitors_mentioned": ["Initech"]}),
            (26, "activity_logged", {"kind": "email"}),
            (83, "updated", {"expected_close_date": close(100)}),
        ],
    )
    # Went quiet after qualification.
    story(
        "D-1003",
        _deal("Analytics add-on", "Initrode", "Dana Reyes", "retail", 18_000, 50),
        [
            (2, "activity_logged", call),
            (9, "stage_changed", {"stage": "qualification", "has_champion": True}),
            (14, "activity_logged", {"kind": "email"}),
            (80, "updated", {"lead_score": 35}),
        ],
    )
    # Close date pushed three times.
    story(
        "D-1004",
        _deal("Security suite", "Umbrella Health", "Lee Park", "healthcare", 75_000, 40),
        [
            (
                4,
                "stage_changed",
                {
                    "stage": "qualification",
                    "budget_confirmed": True,
                    "decision_maker_engaged": True,
                },
            ),
            (18, "stage_changed", {"stage": "proposal"}),
            (38, "updated", {"expected_close_date": close(60)}),
            (55, "activity_logged", call),
            (58, "updated", {"expected_close_date": close(75)}),
            (74, "updated", {"expected_close_date": close(95)}),
            (80, "activity_logged", {"kind": "email"}),
        ],
    )
    # Healthy negotiation, recent activity, fully qualified.
    story(
        "D-1005",
        _deal(
            "Enterprise licence",
            "Stark Industries",
            "Sam Okafor",
            "technology",
            210_000,
            90,
        ),
        [
            (6, "activity_logged", meeting),
            (
                14,
                "stage_changed",
                {
                    "stage": "qualification",
                    "budget_confirmed": True,
                    "has_champion": True,
                    "decision_maker_engaged": True,
                    "lead_score": 85,
                },
            ),
            (30, "stage_changed", {"stage": "proposal"}),
            (50, "activity_logged", {"kind": "meeting", "objection_handled": True}),
            (62, "stage_changed", {"stage": "negotiation"}),
            (74, "activity_logged", call),
            (80, "activity_logged", meeting),
        ],
    )
    # Lost to a competitor.
    story(
        "D-1006",
        _deal("CRM integration", "Hooli", "Lee Park", "technology", 32_000, 45),
        [
            (7, "stage_changed", {"stage": "qualification"}),
            (20, "updated", {"competitors_mentioned": ["Pied Piper", "Nucleus"]}),
            (40, "closed_lost", {"reason": "chose a competitor"}),
        ],
    )
    # Small, fresh prospect.
    story(
        "D-1007",
        _deal("Starter plan", "Vandelay Imports", "Dana Reyes", "retail", 4_500, 100),
        [
            (78, "activity_logged", {"kind": "email"}),
            (81, "activity_logged", call),
        ],
    )
    # Proposal with objections handled, active.
    story(
        "D-1008",
        _deal(
            "Field service app",
            "Wayne Enterprises",
            "Lee Park",
            "manufacturing",
            64_000,
            95,
        ),
        [
            (
                20,
                "stage_changed",
                {"stage": "qualification", "budget_confirmed": True, "has_champion": True},
            ),
            (45, "stage_changed", {"stage": "proposal", "decision_maker_engaged": True}),
            (60, "activity_logged", {"kind": "meeting", "objection_handled": True}),
            (76, "activity_logged", {"kind": "meeting", "objection_handled": True}),
            (82, "activity_logged", call),
        ],
    )
    # Won quickly, small.
    story(
        "D-1009",
        _deal("Team seats", "Soylent", "Sam Okafor", "retail", 9_000, 30),
        [
            (5, "stage_changed", {"stage": "qualification", "budget_confirmed": True}),
            (12, "stage_changed", {"stage": "proposal"}),
            (19, "closed_won", {}),
        ],
    )
    # Negotiation that stalled, overdue.
    story(
        "D-1010",
        _deal("Regional expansion", "Cyberdyne", "Dana Reyes", "manufacturing", 95_000, 50),
        [
            (
                10,
                "stage_changed",
                {"stage": "qualification", "budget_confirmed": True, "has_champion": True},
            ),
            (25, "stage_changed", {"stage": "proposal", "decision_maker_engaged": True}),
            (35, "stage_changed", {"stage": "negotiation"}),
            (40, "activity_logged", call),
            (84, "updated", {"lead_score": 40}),
        ],
    )
    events.sort(key=lambda e: (e.time, e.id))
    return events
