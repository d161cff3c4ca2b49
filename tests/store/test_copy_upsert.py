"""The COPY upsert (``worker.store.upsert.CopyUpsert``) against real PostgreSQL: it writes
exactly what the JSON upsert writes (floats into numeric(p, 2) by their shortest repr, enums,
arrays, jsonb), updates on a conflict, keeps a keep-if-null column, and refuses to run outside
a transaction (its temp table empties at every commit)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from schemas.deal_events import DealStage
from worker.store.upsert import CopyUpsert, insert_from_json, rows_json

pytestmark = pytest.mark.integration


COLUMNS = {
    "id": "text",
    "label": "text",
    "amount": "numeric",
    "rate": "numeric",
    "tags": "text[]",
    "details": "jsonb",
    "at": "timestamptz",
    "part": "integer",
}
ROWS = [
    {
        "id": "b",
        "label": DealStage.proposal,  # an enum: its value
        "amount": Decimal("27200"),
        "rate": 1.005,  # in binary 1.00499999...: the JSON path stores 1.01
        "tags": ("x", "y"),
        "details": {"at": datetime(2026, 1, 2, tzinfo=UTC), "n": [1, 2.5]},
        "at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        "part": 3,
    },
    {
        "id": "a",
        "label": None,
        "amount": None,
        "rate": 0.1,
        "tags": (),
        "details": None,
        "at": None,
        "part": None,
    },
]


async def make_table(conn: asyncpg.Connection) -> str:
    name = f"copy_upsert_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"CREATE TABLE {name} (id text PRIMARY KEY, label text, amount numeric(16, 2), "
        "rate numeric(5, 2), tags text[], details jsonb, at timestamptz, part integer)"
    )
    return name


async def contents(conn: asyncpg.Connection, table: str) -> list[tuple]:
    return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]


async def test_copy_writes_what_json_writes_and_merges(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        by_json, by_copy = await make_table(conn), await make_table(conn)
        spec = {"conflict": ("id",), "update": [c for c in COLUMNS if c != "id"]}
        copy = CopyUpsert(by_copy, COLUMNS, keep_if_null=("part",), **spec)
        json_sql = insert_from_json(by_json, COLUMNS, keep_if_null=("part",), **spec)

        async with conn.transaction():
            await copy.execute(conn, ROWS)
        await conn.execute(json_sql, rows_json(ROWS))
        assert await contents(conn, by_copy) == await contents(conn, by_json)
        assert (await contents(conn, by_copy))[1][3] == Decimal("1.01")

        # a conflict updates; the keep-if-null column keeps its value when given none
        later = {**ROWS[0], "rate": 50.0, "part": None, "tags": ["z"]}
        async with conn.transaction():
            await copy.execute(conn, [later])
        row = (await contents(conn, by_copy))[1]
        assert (row[3], row[4], row[7]) == (Decimal("50.00"), ["z"], 3)


async def test_outside_a_transaction_it_refuses(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        table = await make_table(conn)
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await CopyUpsert(table, COLUMNS, conflict=("id",)).execute(conn, ROWS)
        assert await contents(conn, table) == []
