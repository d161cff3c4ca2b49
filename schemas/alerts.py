"""The at-risk alert published to the alerts topic (key = deal id, header ``alert_id``).

``alert_id`` is derived from the deal, the event that caused the alert and its kind, so a
re-processed event yields the same id: consumers dedupe by it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AlertKind = Literal["at_risk", "escalated", "resolved"]
AlertLevel = Literal["none", "at_risk", "critical"]


class AlertState(BaseModel):
    """The deal's alert level and scores before this alert."""

    model_config = ConfigDict(frozen=True)

    level: AlertLevel
    health_score: int | None = None
    health_category: str | None = None
    close_probability: float | None = None


class AlertCause(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    event_time: datetime


class DealAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(description="stable id to dedupe by (UUID)")
    kind: AlertKind = Field(
        description="at_risk: the deal became at risk; escalated: it became critical; "
        "resolved: it recovered or closed"
    )
    level: AlertLevel = Field(description="the deal's alert level after this alert")
    deal_id: str
    name: str | None = None
    company: str | None = None
    owner: str | None = None
    value: Decimal | None = None
    currency: str = "USD"
    stage: str
    health_score: int
    health_category: str
    close_probability: float
    risk_factors: list[str]
    reasons: list[str] = Field(description="why the deal is (or no longer is) at risk")
    previous: AlertState
    caused_by: AlertCause
    occurred_at: datetime = Field(description="the causing event's time")
    framework_version: str
