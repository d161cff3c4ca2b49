"""What every event contract shares: the CloudEvents 1.0 style envelope and sane value types.

``subject`` is the id of what the event is about (a deal, an account) and also the Kafka key,
so one subject's events stay in order on one partition. ``time`` is when the change happened
at the source; the worker treats it as "now" when scoring, never the wall clock.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Dates outside this window are data-entry errors, not business events.
EARLIEST = date(1990, 1, 1)
LATEST = date(2100, 12, 31)
MAX_AMOUNT = Decimal("1e12")


def _sane_date(value: date | None) -> date | None:
    if value is not None and not EARLIEST <= value <= LATEST:
        raise ValueError(f"date {value.isoformat()} is outside {EARLIEST}..{LATEST}")
    return value


def _sane_datetime(value: datetime | None) -> datetime | None:
    if value is None:
        return value
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    _sane_date(value.date())
    return value


SaneDate = Annotated[date, AfterValidator(_sane_date)]
SaneDatetime = Annotated[datetime, AfterValidator(_sane_datetime)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, max_digits=16, decimal_places=2)]
Text = Annotated[str, Field(min_length=1, max_length=300)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(Strict):
    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    time: SaneDatetime
    subject: Annotated[
        str, Field(min_length=1, max_length=200, description="the deal or account id")
    ]
    datacontenttype: Literal["application/json"] = "application/json"
