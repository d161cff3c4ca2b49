"""Realistic, deterministic test deals with event histories, for demos and load tests.

``generate_deals(n, seed, as_of)`` builds ``n`` deals whose histories end before ``as_of``.
Deal ``i`` cycles through ten archetypes (so any ``n >= 7`` covers every stage) and draws its
details from ``random.Random(f"{seed}:{i}")``: deal ``i`` is the same whatever ``n`` is, so
``--deals 50`` after ``--deals 30`` only adds 20 deals. Archetypes:

fresh            prospecting, created days ago
healthy_early    qualification, busy, recent activity, budget confirmed
won              walked every stage, closed won weeks ago
stalled          high value, stuck in proposal for months
quiet            negotiation, no activity for 30-75 days
slipping         close date pushed 3-5 times
lost             closed lost with a reason
whale            very high value (0.5-2.5M) proposal, competitors, no champion
healthy_late     negotiation, champion, decision maker engaged, recent activity
won_big          large win after a long cycle

Ids derive from the seed and the index only: deal ``seed<seed>-<i:04d>``, events
``seed<seed>-<i:04d>-e<k:02d>``. Publishing the same seed twice adds nothing (the worker dedupes
event ids), even with another ``as_of`` (the second run's events are then ignored as
duplicates: use another seed for a fresh set).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.deal_events import (
    OPEN_STAGES,
    DealEvent,
    DealEventAdapter,
    DealStage,
)
from worker.domain.deal import DealState, apply_event

SOURCE = "revintel/seed"
ARCHETYPES = (
    "fresh",
    "healthy_early",
    "won",
    "stalled",
    "quiet",
    "slipping",
    "lost",
    "whale",
    "healthy_late",
    "won_big",
)
COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Foods",
    "Hooli", "Vandelay Imports", "Soylent Labs", "Tyrell Systems", "Cyberdyne Retail",
    "Wonka Confectionery", "Oscorp Energy", "Gringotts Finance", "Pied Piper", "Massive Dynamic",
    "Nakatomi Trading", "Aperture Science", "Black Mesa Research", "Monarch Media",
)  # fmt: skip
INDUSTRIES = (
    "technology", "finance", "healthcare", "retail", "manufacturing", "logistics", "media",
    "energy", "education", "telecommunications",
)  # fmt: skip
OWNERS = ("Dana Reyes", "Sam Okafor", "Priya Nair", "Lukas Brandt", "Mei Chen", "Tom Alvarez")
PRODUCTS = (
    "Platform license", "Analytics add-on", "Data migration", "Support renewal",
    "Security suite", "Onboarding services", "API access tier", "Enterprise rollout",
)  # fmt: skip
COMPETITORS = ("Initrode", "Contoso", "Northwind", "Fabrikam")
LOSS_REASONS = (
    "went with a competitor",
    "no budget this year",
    "no decision: project shelved",
    "price too high",
)
ACTIVITY_KINDS = ("call", "email", "meeting", "demo", "note")


def _office_hours(at: datetime, as_of: datetime) -> datetime:
    """``at`` moved into 08:00-18:00 of its day, keeping the order of times (not after
    ``as_of``), to the minute."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    moved = midnight + timedelta(hours=8) + (at - midnight) * 10 / 24
    return (moved if moved < as_of else at).replace(second=0, microsecond=0)


class _Story:
    """The steps of one deal, as (days before as_of, kind, data), turned into events."""

    def __init__(self, deal_id: str, rng: random.Random) -> None:
        self.deal_id = deal_id
        self.rng = rng
        self.steps: list[tuple[float, str, dict[str, Any]]] = []

    def add(self, days_ago: float, kind: str, data: dict[str, Any] | None = None) -> None:
        self.steps.append((days_ago, kind, data or {}))

    def activities(self, start: float, end: float, count: int, objections: float = 0.15) -> None:
        """``count`` activities between ``start`` and ``end`` days ago (start > end)."""
        for _ in range(count):
            self.add(
                self.rng.uniform(end, start),
                "activity_logged",
                {
                    "kind": self.rng.choice(ACTIVITY_KINDS),
                    "objection_handled": self.rng.random() < objections,
                },
            )

    def events(self, as_of: datetime) -> list[DealEvent]:
        ordered = sorted(self.steps, key=lambda s: -s[0])  # oldest first, stable
        events: list[DealEvent] = []
        previous: datetime | None = None
        for k, (days_ago, kind, data) in enumerate(ordered):
            at = _office_hours(as_of - timedelta(days=max(days_ago, 1 / 24)), as_of)
            if previous is not None and at <= previous:
                at = previous + timedelta(minutes=1)
            previous = at
            events.append(
                DealEventAdapter.validate_python(
                    {
                        "id": f"{self.deal_id}-e{k:02d}",
                        "source": SOURCE,
                        "type": f"deal.{kind}",
                        "time": at,
                        "subject": self.deal_id,
                        "data": data,
                    }
                )
            )
        return events


def _money(rng: random.Random, low: float, high: float) -> int:
    return int(round(rng.uniform(low, high), -2))


def _deal(i: int, seed: int, as_of: datetime) -> list[DealEvent]:  # noqa: C901 - one story per archetype, read top to bottom
    rng = random.Random(f"{seed}:{i}")
    archetype = ARCHETYPES[i % len(ARCHETYPES)]
    story = _Story(f"seed{seed}-{i:04d}", rng)
    today = as_of.date()

    def close_in(days: float) -> str:
        return (today + timedelta(days=round(days))).isoformat()

    company = rng.choice(COMPANIES)
    amount = _money(rng, 8_000, 150_000)
    if archetype == "stalled":
        amount = _money(rng, 150_000, 400_000)
    elif archetype in ("whale", "won_big"):
        amount = _money(rng, 500_000, 2_500_000)
    age = {
        "fresh": rng.uniform(1, 10),
        "healthy_early": rng.uniform(15, 35),
        "won": rng.uniform(60, 120),
        "stalled": rng.uniform(110, 180),
        "quiet": rng.uniform(70, 130),
        "slipping": rng.uniform(120, 200),
        "lost": rng.uniform(50, 110),
        "whale": rng.uniform(60, 100),
        "healthy_late": rng.uniform(45, 80),
        "won_big": rng.uniform(150, 240),
    }[archetype]
    first_close = -age + rng.uniform(60, 120)  # days from as_of
    created: dict[str, Any] = {
        "name": f"{rng.choice(PRODUCTS)} for {company}",
        "company": company,
        "owner": rng.choice(OWNERS),
        "industry": rng.choice(INDUSTRIES),
        "amount": amount,
        "currency": "USD",
        "stage": "prospecting",
        "expected_close_date": close_in(first_close),
        "lead_score": rng.randint(20, 90),
    }
    story.add(age, "created", created)

    def walk(stages: list[str], until: float) -> list[float]:
        """Stage changes spread from creation to ``until`` days ago; their days-ago."""
        marks = sorted((rng.uniform(until, age) for _ in stages), reverse=True)
        for stage, mark in zip(stages, marks, strict=True):
            data: dict[str, Any] = {"stage": stage}
            if stage == "qualification" and rng.random() < 0.7:
                data["budget_confirmed"] = True
            if stage == "proposal" and rng.random() < 0.6:
                data["decision_maker_engaged"] = True
            story.add(mark, "stage_changed", data)
        return marks

    if archetype == "fresh":
        story.activities(age, 0.2, rng.randint(0, 2))
    elif archetype == "healthy_early":
        walk(["qualification"], age / 2)
        story.activities(age, 0.5, rng.randint(4, 8))
        story.add(rng.uniform(0.5, 3), "activity_logged", {"kind": "meeting"})
    elif archetype in ("won", "won_big"):
        closed = rng.uniform(3, 45)
        walk(["qualification", "proposal", "negotiation"], closed + 3)
        story.activities(age, closed, rng.randint(6, 14), objections=0.3)
        if archetype == "won_big":
            story.add(closed + 10, "updated", {"has_champion": True, "budget_confirmed": True})
        final = _money(rng, amount * 0.85, amount * 1.05)
        story.add(closed, "closed_won", {"amount": final})
    elif archetype == "stalled":
        in_stage = rng.uniform(60, 100)
        walk(["qualification", "proposal"], in_stage)
        story.activities(age, in_stage - 10, rng.randint(3, 6))
        story.add(in_stage - 5, "updated", {"competitors_mentioned": [rng.choice(COMPETITORS)]})
    elif archetype == "quiet":
        silent = rng.uniform(30, 75)
        walk(["qualification", "proposal", "negotiation"], silent + 5)
        story.activities(age, silent, rng.randint(4, 8))
    elif archetype == "slipping":
        walk(["qualification", "proposal", "negotiation"], 40)
        story.activities(age, 2, rng.randint(5, 10))
        pushes = rng.randint(3, 5)
        close = first_close
        for n in range(pushes):
            close += rng.uniform(20, 45)
            story.add(
                age * (pushes - n) / (pushes + 1),
                "updated",
                {"expected_close_date": close_in(close)},
            )
    elif archetype == "lost":
        closed = rng.uniform(2, 30)
        walk(["qualification", "proposal"][: rng.randint(1, 2)], closed + 5)
        story.activities(age, closed, rng.randint(2, 6))
        story.add(closed, "closed_lost", {"reason": rng.choice(LOSS_REASONS)})
    elif archetype == "whale":
        walk(["qualification", "proposal"], rng.uniform(20, 40))
        story.activities(age, 8, rng.randint(3, 6))
        competitors = rng.sample(COMPETITORS, 2)
        story.add(rng.uniform(10, 20), "updated", {"competitors_mentioned": competitors})
    elif archetype == "healthy_late":
        walk(["qualification", "proposal", "negotiation"], rng.uniform(5, 15))
        story.activities(age, 0.5, rng.randint(8, 14), objections=0.3)
        story.add(rng.uniform(0.5, 4), "activity_logged", {"kind": "call"})
        story.add(
            rng.uniform(2, 6),
            "updated",
            {"has_champion": True, "decision_maker_engaged": True, "budget_confirmed": True},
        )
    return story.events(as_of)


def generate_deals(n: int, seed: int, as_of: datetime) -> list[DealEvent]:
    """``n`` deals with their histories up to ``as_of`` (tz-aware), sorted by (time, id)."""
    if n < 0:
        raise ValueError("n must not be negative")
    if as_of.tzinfo is None:
        raise ValueError("as_of must carry a UTC offset")
    events = [e for i in range(n) for e in _deal(i, seed, as_of)]
    return sorted(events, key=lambda e: (e.time, e.id))


@dataclass(frozen=True)
class PipelineSummary:
    """The pipeline after applying a stream of events (as the worker would merge them)."""

    events: int
    deals: int
    by_stage: dict[DealStage, int]
    open_pipeline: Decimal
    won_amount: Decimal
    lost_amount: Decimal
    first_event: datetime | None = None
    last_event: datetime | None = None
    amount_by_stage: dict[DealStage, Decimal] = field(default_factory=dict)

    @property
    def open_deals(self) -> int:
        return sum(self.by_stage[s] for s in OPEN_STAGES)


def final_states(events: list[DealEvent]) -> dict[str, DealState]:
    """Each deal's state after the events, applied in time order with worker semantics
    (duplicate ids and stale events skipped)."""
    states: dict[str, DealState] = {}
    seen: set[str] = set()
    for event in sorted(events, key=lambda e: e.time):
        if event.id in seen:
            continue
        seen.add(event.id)
        new = apply_event(states.get(event.subject), event)
        if new is not None:
            states[event.subject] = new
    return states


def summarize(events: list[DealEvent]) -> PipelineSummary:
    """Deals per stage and the open pipeline (sum of open deals' amounts) of ``events``."""
    states = final_states(events)
    by_stage = Counter(s.stage for s in states.values())
    amounts: dict[DealStage, Decimal] = {stage: Decimal(0) for stage in DealStage}
    for state in states.values():
        amounts[state.stage] += state.amount or 0
    times = [e.time for e in events]
    return PipelineSummary(
        events=len(events),
        deals=len(states),
        by_stage={stage: by_stage.get(stage, 0) for stage in DealStage},
        open_pipeline=sum((amounts[s] for s in OPEN_STAGES), Decimal(0)),
        won_amount=amounts[DealStage.closed_won],
        lost_amount=amounts[DealStage.closed_lost],
        first_event=min(times, default=None),
        last_event=max(times, default=None),
        amount_by_stage=amounts,
    )
