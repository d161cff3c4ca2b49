"""Builders of deal events for tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.deal_events import DealEvent, DealEventAdapter

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count()


def event(
    deal: str, kind: str, data: dict[str, Any] | None = None, day: float = 0, **envelope: Any
) -> DealEvent:
    raw: dict[str, Any] = {
        "id": f"{deal}-e{next(_ids)}",
        "source": "tests",
        "type": f"deal.{kind}",
        "time": T0 + timedelta(days=day),
        "subject": deal,
        "data": data or {},
    }
    raw.update(envelope)
    return DealEventAdapter.validate_python(raw)


def created(deal: str, day: float = 0, **fields: Any) -> DealEvent:
    data = {
        "name": f"Deal {deal}",
        "company": "Acme",
        "owner": "Ana",
        "amount": 10_000,
        "stage": "prospecting",
        "industry": "technology",
    }
    data.update(fields)
    return event(deal, "created", data, day)
