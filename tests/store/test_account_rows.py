"""The ``accounts`` rows of scored states: exactly the upserted columns, and back."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.account_factories import FW, created, ev, fold, incoming, usage
from worker.domain.account import score_account
from worker.domain.account_batch import apply_account_batch
from worker.store.accounts import COLUMNS, account_row, state_from_row
from worker.store.upsert import rows_json


def _full_state():
    return fold(
        created("A"),
        usage("A", "2026-02-28", 40, 300, 1, features_used=12),
        ev("A", "ticket_opened", {"ticket_id": "T", "severity": "medium", "escalated": True}, 2),
        ev("A", "payment_failed", {"invoice_id": "I", "amount": "12.34", "days_overdue": 3}, 3),
        ev("A", "nps_submitted", {"score": 6, "csat": 3.5}, 4),
        ev("A", "renewal_updated", {"renewal_date": "2026-04-01"}, 5),
    )


def test_row_has_exactly_the_upserted_columns_and_round_trips():
    state = _full_state()
    row = account_row(state, score_account(state, FW))
    assert set(row) == set(COLUMNS)
    assert (row["open_ticket_count"], row["escalated_tickets"]) == (1, 1)
    assert (row["max_ticket_severity"], row["failed_payments"], row["days_overdue"]) == (
        "medium",
        1,
        5,
    )
    assert (row["active_seats"], row["logins"]) == (40, 300)
    assert row["churn_risk"] == score_account(state, FW).churn.score
    assert row["score_details"]["churn"]["framework_version"] == FW.version
    # as asyncpg returns it: jsonb as text, numeric as Decimal
    stored = json.loads(json.dumps(row))
    for column in ("usage_history", "open_tickets", "failed_invoices"):
        stored[column] = json.dumps(stored[column])
    stored["csat"] = Decimal("3.50")
    assert state_from_row(stored) == state


def test_rows_json_has_one_row_per_changed_account():
    out = apply_account_batch(
        {}, set(), incoming(created("A"), created("B"), ev("A", "updated", {"owner": "X"}, 1)), FW
    )
    rows = json.loads(rows_json(account_row(s, out.scores[a]) for a, s in out.states.items()))
    assert sorted(r["account_id"] for r in rows) == ["A", "B"]
