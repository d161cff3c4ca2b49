"""Deal change events: a CloudEvents 1.0 style envelope around typed deal data.

The envelope's ``subject`` is the deal id (also the Kafka key, so one deal's events stay in
order on one partition). ``time`` is when the change happened in the CRM; the worker treats it
as "now" when scoring, never the wall clock.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator

from schemas.envelope import Envelope, Money, SaneDate, SaneDatetime, Strict, Text


class DealStage(StrEnum):
    prospecting = "prospecting"
    qualification = "qualification"
    proposal = "proposal"
    negotiation = "negotiation"
    closed_won = "closed_won"
    closed_lost = "closed_lost"


OPEN_STAGES = (
    DealStage.prospecting,
    DealStage.qualification,
    DealStage.proposal,
    DealStage.negotiation,
)
CLOSED_STAGES = (DealStage.closed_won, DealStage.closed_lost)


# Fields a CRM can empty: ``DealFields.cleared`` names them (an absent field is "unchanged").
ClearableField = Literal[
    "name",
    "company",
    "owner",
    "industry",
    "amount",
    "expected_close_date",
    "lead_score",
    "competitors_mentioned",
]


class DealFields(Strict):
    """Deal attributes. Every field is optional: an update carries only what changed, and
    ``cleared`` names the fields the CRM emptied in this change."""

    name: Text | None = None
    company: Text | None = None
    owner: Text | None = None
    industry: Text | None = None
    amount: Money | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    stage: DealStage | None = None
    expected_close_date: SaneDate | None = None
    lead_score: Annotated[int, Field(ge=0, le=100)] | None = None
    interactions: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    objections_handled: Annotated[int, Field(ge=0, le=10_000)] | None = None
    has_champion: bool | None = None
    budget_confirmed: bool | None = None
    decision_maker_engaged: bool | None = None
    competitors_mentioned: Annotated[list[Text], Field(max_length=50)] | None = None
    last_activity_at: SaneDatetime | None = None
    cleared: (
        Annotated[
            list[ClearableField],
            Field(max_length=8, description="fields the CRM emptied (set to null) in this change"),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _cleared_is_not_set(self) -> DealFields:
        both = [name for name in self.cleared or () if getattr(self, name) is not None]
        if both:
            raise ValueError(f"fields both set and cleared: {', '.join(both)}")
        return self


class StageChange(DealFields):
    stage: DealStage  # required here


class Activity(Strict):
    """One logged touch (call, email, meeting, note). Counts as an interaction."""

    kind: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")] = "note"
    occurred_at: SaneDatetime | None = None  # defaults to the envelope's time
    objection_handled: bool = False
    note: Annotated[str, Field(max_length=2000)] | None = None


class Closure(Strict):
    """A deal closing. ``amount`` is the final value when it differs from the pipeline value."""

    amount: Money | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class Merge(Strict):
    """A deal merged into another in the CRM: it leaves the pipeline without being won or
    lost (the surviving deal carries on)."""

    into: Annotated[str, Field(min_length=1, max_length=200, description="the surviving deal")]


class DealCreated(Envelope):
    type: Literal["deal.created"]
    data: DealFields


class DealUpdated(Envelope):
    type: Literal["deal.updated"]
    data: DealFields


class DealStageChanged(Envelope):
    type: Literal["deal.stage_changed"]
    data: StageChange


class DealActivityLogged(Envelope):
    type: Literal["deal.activity_logged"]
    data: Activity


class DealClosedWon(Envelope):
    type: Literal["deal.closed_won"]
    data: Closure = Closure()


class DealClosedLost(Envelope):
    type: Literal["deal.closed_lost"]
    data: Closure = Closure()


class DealMerged(Envelope):
    type: Literal["deal.merged"]
    data: Merge


DealEvent = Annotated[
    DealCreated
    | DealUpdated
    | DealStageChanged
    | DealActivityLogged
    | DealClosedWon
    | DealClosedLost
    | DealMerged,
    Field(discriminator="type"),
]
DealEventAdapter: TypeAdapter[DealEvent] = TypeAdapter(DealEvent)
DEAL_EVENT_TYPES = (
    "deal.created",
    "deal.updated",
    "deal.stage_changed",
    "deal.activity_logged",
    "deal.closed_won",
    "deal.closed_lost",
    "deal.merged",
)
