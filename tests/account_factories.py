"""Account events for tests: built through the real schema, with increasing ids."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.account_events import AccountEvent, AccountEventAdapter
from worker.domain.account import apply_account_event
from worker.domain.account_batch import AccountIncoming
from worker.domain.batch import Incoming, RecordRef
from worker.engine import default_framework

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count()
FW = default_framework()


def raw_event(account: str, kind: str, data: dict[str, Any] | None = None, day: float = 0):
    return {
        "id": f"{account}-a{next(_ids)}",
        "source": "tests",
        "type": f"account.{kind}",
        "time": (T0 + timedelta(days=day)).isoformat(),
        "subject": account,
        "data": data or {},
    }


def ev(account: str, kind: str, data: dict[str, Any] | None = None, day: float = 0, **env):
    raw = raw_event(account, kind, data, day)
    raw.update(env)
    return AccountEventAdapter.validate_python(raw)


def created(account: str, day: float = 0, **fields: Any) -> AccountEvent:
    data = {
        "name": f"Account {account}",
        "industry": "technology",
        "owner": "Ana",
        "plan": "professional",
        "licensed_seats": 50,
        "features_available": 20,
        "arr": "60000",
    }
    data.update(fields)
    return ev(account, "created", data, day)


def usage(account: str, period_end: str, active: int, logins: int, day: float, **more: Any):
    return ev(
        account,
        "usage_reported",
        {"period_end": period_end, "active_seats": active, "logins": logins, **more},
        day,
    )


def fold(*events):
    state = None
    for e in events:
        state = apply_account_event(state, e) or state
    return state


def ref(offset: int = 0) -> RecordRef:
    return RecordRef("crm.account-events", 0, offset, None, None, ())


def incoming(*events) -> list[AccountIncoming]:
    return [Incoming(e, ref(i)) for i, e in enumerate(events)]
