"""Merging deal events into a deal's current state. Pure: no I/O, no clock.

Rules (the event's ``time`` is the only clock):
- ``stage_entered_at`` moves to the event time whenever the stage changes.
- ``close_date_pushes`` counts every move of the expected close date to a later date.
- An activity adds one interaction, moves ``last_activity_at`` forward (never back) and counts
  a handled objection when flagged.
- Closing sets the stage, ``closed_at`` and, when given, the final amount.
- An event older than the last applied one is stale and does not change the state
  (``apply_event`` returns ``None``); the caller also skips event ids it has already applied.
  Except for what the deal does not know yet: a late field change (a HubSpot notification
  retried hours later, behind a newer one) still fills the fields that are unset (an amount,
  a close date, a name...; never one that has a value, nor the stage), and a late creation
  moves ``created_at`` back to when the deal was really created. So an out-of-order amount is
  not lost; a value already set keeps the newer event's (the last writer wins per event).
- An update for a deal never created is applied as its creation (CRMs drop webhooks; the
  next change should still produce the deal), starting in prospecting.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.deal_events import (
    DealActivityLogged,
    DealClosedLost,
    DealClosedWon,
    DealEvent,
    DealFields,
    DealStage,
)


class DealState(BaseModel):
    """The current state of one deal, as stored in the ``deals`` table (without scores)."""

    model_config = ConfigDict(frozen=True)

    deal_id: str
    name: str | None = None
    company: str | None = None
    owner: str | None = None
    industry: str | None = None
    amount: Decimal | None = None
    currency: str = "USD"
    stage: DealStage = DealStage.prospecting
    expected_close_date: date | None = None
    lead_score: int | None = None
    interactions: int = 0
    objections_handled: int = 0
    has_champion: bool = False
    budget_confirmed: bool = False
    decision_maker_engaged: bool = False
    competitors: tuple[str, ...] = ()
    last_activity_at: datetime | None = None
    close_date_pushes: int = 0
    created_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None = None
    last_event_id: str
    last_event_time: datetime


def _field_changes(state: DealState, fields: DealFields, at: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in fields.model_dump(exclude_none=True).items():
        if name == "competitors_mentioned":
            changes["competitors"] = tuple(dict.fromkeys(value))  # dedupe, keep order
        elif name == "last_activity_at":
            if state.last_activity_at is None or value > state.last_activity_at:
                changes[name] = value
        else:
            changes[name] = value
    new_close = changes.get("expected_close_date")
    if new_close and state.expected_close_date and new_close > state.expected_close_date:
        changes["close_date_pushes"] = state.close_date_pushes + 1
    return changes


def _new_state(deal_id: str, at: datetime, event_id: str) -> DealState:
    return DealState(
        deal_id=deal_id,
        created_at=at,
        stage_entered_at=at,
        last_event_id=event_id,
        last_event_time=at,
    )


# Fields a late event may still fill while unset (None): the others have defaults (a stage,
# counts, flags) that cannot tell "unset" from a value.
FILLABLE = (
    "name",
    "company",
    "owner",
    "industry",
    "amount",
    "expected_close_date",
    "lead_score",
    "last_activity_at",
)


def _late(state: DealState, event: DealEvent) -> DealState | None:
    """What a stale event may still tell (see the module docstring), or None."""
    if isinstance(event, DealActivityLogged | DealClosedWon | DealClosedLost):
        return None
    data = event.data.model_dump(exclude_none=True)
    fills: dict[str, Any] = {
        f: data[f] for f in FILLABLE if f in data and getattr(state, f) is None
    }
    if event.type == "deal.created" and event.time < state.created_at:
        fills["created_at"] = event.time
    return state.model_copy(update=fills) if fills else None


def apply_event(state: DealState | None, event: DealEvent) -> DealState | None:
    """Return the state after ``event``, or ``None`` when the event is stale (and tells
    nothing the deal lacks)."""
    at = event.time
    if state is None:
        state = _new_state(event.subject, at, event.id)
    elif at < state.last_event_time:
        return _late(state, event)

    changes: dict[str, Any]
    if isinstance(event, DealActivityLogged):
        occurred = event.data.occurred_at or at
        changes = {
            "interactions": state.interactions + 1,
            "objections_handled": state.objections_handled + int(event.data.objection_handled),
        }
        if state.last_activity_at is None or occurred > state.last_activity_at:
            changes["last_activity_at"] = occurred
    elif isinstance(event, DealClosedWon | DealClosedLost):
        won = isinstance(event, DealClosedWon)
        stage = DealStage.closed_won if won else DealStage.closed_lost
        changes = {"stage": stage}
        if state.stage != stage:
            changes["closed_at"] = at
        if event.data.amount is not None:
            changes["amount"] = event.data.amount
    else:  # created, updated, stage_changed: all carry deal fields
        changes = _field_changes(state, event.data, at)

    if "stage" in changes and changes["stage"] != state.stage:
        changes["stage_entered_at"] = at
        if changes["stage"] not in (DealStage.closed_won, DealStage.closed_lost):
            changes["closed_at"] = None  # reopened
    changes["last_event_id"] = event.id
    changes["last_event_time"] = at
    return state.model_copy(update=changes)
