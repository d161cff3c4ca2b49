"""The alerts published to the alerts topic: a deal's (``DealAlert``) or an account's
(``AccountAlert``), told apart by ``entity`` (parse either with ``AlertAdapter``). Key = the
deal or account id; headers ``alert_id``, ``kind`` and ``entity``.

``alert_id`` is derived from the subject, the event that caused the alert and its kind, so a
re-processed event yields the same id: consumers dedupe by it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
)

CENT = Decimal("0.01")
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

    entity: Literal["deal"] = Field(
        "deal", description="whose alert: a deal's (absent in alerts published before 008)"
    )
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

    @field_validator("value")
    @classmethod
    def _cents(cls, value: Decimal | None) -> Decimal | None:
        """Always to the cent: the same deal's value is ``27200`` fresh from an event and
        ``27200.00`` read back from the table, and a replay batched differently must publish
        the same alert."""
        return None if value is None else value.quantize(CENT)


class AccountAlertState(BaseModel):
    """The account's alert level and churn risk before this alert."""

    model_config = ConfigDict(frozen=True)

    level: AlertLevel
    churn_risk: int | None = None
    churn_level: str | None = None


class AccountAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity: Literal["account"] = Field(description="whose alert: an account's")
    alert_id: str = Field(description="stable id to dedupe by (UUID)")
    kind: AlertKind = Field(
        description="at_risk: the account became at risk (churn risk at or above the alert "
        "line, or a renewal near at high churn risk); escalated: its churn level became "
        "critical; resolved: churn risk fell back below the line, with some margin"
    )
    level: AlertLevel = Field(description="the account's alert level after this alert")
    account_id: str
    name: str | None = None
    owner: str | None = None
    arr: Decimal | None = Field(None, description="annual recurring revenue")
    churn_risk: int = Field(description="churn risk 0-100")
    churn_level: str = Field(description="low, medium, high or critical")
    renewal_date: date | None = None
    days_to_renewal: int | None = Field(
        None, description="days from occurred_at to the renewal (negative: overdue)"
    )
    reasons: list[str] = Field(description="why the account is (or no longer is) at risk")
    drivers: list[str] = Field(description="every churn driver, biggest first")
    previous: AccountAlertState
    caused_by: AlertCause
    occurred_at: datetime = Field(description="the causing event's (or clock tick's) time")
    framework_version: str

    @field_validator("arr")
    @classmethod
    def _cents(cls, value: Decimal | None) -> Decimal | None:
        """To the cent, as a deal alert's value (the same whatever the batching)."""
        return None if value is None else value.quantize(CENT)


def _entity(value: Any) -> str:
    """The union's tag: ``entity``, "deal" when absent (deal alerts published before it)."""
    if isinstance(value, dict):
        return value.get("entity", "deal")
    return getattr(value, "entity", "deal")


Alert = Annotated[
    Annotated[DealAlert, Tag("deal")] | Annotated[AccountAlert, Tag("account")],
    Discriminator(_entity),
]
"""Any message of the alerts topic, told apart by ``entity``."""

AlertAdapter: TypeAdapter[DealAlert | AccountAlert] = TypeAdapter(Alert)
