"""A locked deal row read back (``worker.store.deals.lock``) is the state that was written,
built without validation: the same fields, values and types as ``DealState.model_validate``
gives for the row, on rows the worker's own write path stored (real PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from worker.domain.batch import Incoming, RecordRef
from worker.domain.deal import DealState
from worker.domain.deal_batch import apply_deal_batch
from worker.engine import load_framework
from worker.store import deals
from worker.testdata.seed import generate_deals

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _incoming(prefix: str) -> list[Incoming]:
    ref = RecordRef("deals", 0, 0, None, None, ())
    events = generate_deals(60, 3, AS_OF)
    return [
        Incoming(
            e.model_copy(update={"subject": f"{prefix}{e.subject}", "id": f"{prefix}{e.id}"}), ref
        )
        for e in events
    ]


def _validated(record: asyncpg.Record) -> DealState:
    data = {c: record[c] for c in deals.STATE_COLUMNS}
    data["competitors"] = tuple(data["competitors"] or ())
    data["field_times"] = json.loads(data["field_times"])
    return DealState.model_validate(data)


async def test_locked_states_are_the_written_states_as_validation_reads_them(db):
    prefix = f"rows-{uuid.uuid4().hex[:6]}-"
    out = apply_deal_batch({}, (), _incoming(prefix), load_framework())
    assert len(out.states) == 60
    async with db.acquire() as conn:
        written = conn.transaction()
        await written.start()
        try:
            await deals.write(conn, out)
            locked = await deals.lock(conn, sorted(out.states))
            rows = await conn.fetch(
                f"SELECT {deals._LOAD_COLUMNS} FROM deals WHERE deal_id = ANY($1::text[])",
                list(out.states),
            )
        finally:
            await written.rollback()  # nothing left in the shared database
    assert len(rows) == 60
    for row in rows:
        state = locked[row["deal_id"]].state
        valid = _validated(row)
        assert state == valid
        assert [type(v) for v in state.__dict__.values()] == [
            type(v) for v in valid.__dict__.values()
        ]
        assert {k: type(v.tzinfo) for k, v in state.field_times.items()} == {
            k: type(v.tzinfo) for k, v in valid.field_times.items()
        }
        # what was written comes back (the amount at the column's scale: 27200.00)
        before = out.states[row["deal_id"]]
        assert state.model_dump(exclude={"amount"}) == before.model_dump(exclude={"amount"})
        assert state.amount == before.amount
