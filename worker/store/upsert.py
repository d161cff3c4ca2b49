"""The one builder of set-based writes: a batch's rows travel as one JSON array parameter,
unpacked by ``jsonb_to_recordset`` and inserted (or merged) in one statement, whatever the size
of the batch: no per-row round trips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from pydantic_core import to_json


def insert_from_json(
    table: str,
    columns: Mapping[str, str],
    *,
    conflict: Iterable[str],
    update: Iterable[str] | None = None,
    keep_if_null: Iterable[str] = (),
) -> str:
    """``INSERT INTO table SELECT ... FROM jsonb_to_recordset($1)`` for ``columns`` (name ->
    SQL type). On a conflict on ``conflict`` the ``update`` columns take the new values (those
    in ``keep_if_null`` only when the new value is not null); with ``update`` None the existing
    row is kept (``DO NOTHING``)."""
    cols = ", ".join(columns)
    recordset = ", ".join(f"{c} {t}" for c, t in columns.items())
    updates = list(update or ())
    keep = set(keep_if_null)

    def assign(c: str) -> str:
        new = f"EXCLUDED.{c}"
        return f"{c} = COALESCE({new}, {table}.{c})" if c in keep else f"{c} = {new}"

    action = (
        "DO UPDATE SET\n    " + ",\n    ".join(assign(c) for c in updates)
        if updates
        else "DO NOTHING"
    )
    return (
        f"INSERT INTO {table} ({cols})\n"
        f"SELECT {cols}\n"
        f"FROM jsonb_to_recordset($1::jsonb) AS r({recordset})\n"
        f"ON CONFLICT ({', '.join(conflict)}) {action}\n"
    )


def rows_json(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as the JSON parameter of an ``insert_from_json`` statement (pydantic-core's encoder:
    dates, decimals and enums without a JSON-mode dump per row)."""
    return to_json(list(rows)).decode()


async def update_by_copy(
    conn: asyncpg.Connection,
    table: str,
    key: str,
    columns: Mapping[str, str],
    records: Sequence[tuple[Any, ...]],
    assign: Mapping[str, str],
) -> None:
    """``UPDATE table`` from ``records`` (tuples in ``columns`` order) matched on ``key``: the
    records are COPYed (binary) into a session temp table, then merged in one statement.
    ``assign`` maps a column to its new value's SQL (``r.<column>`` is the record's,
    ``t.<column>`` the row's). For large pages: COPY beats a JSON parameter by far.

    The temp table is analyzed before the merge: without statistics the planner guesses it
    large and hashes the whole of ``table`` (a sequential scan per page: a tick over a million
    deals read the table 200 times); with them it probes ``key``'s index per record."""
    temp = f"_update_{table}"
    spec = ", ".join(f"{c} {t}" for c, t in columns.items())
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} ({spec}) ON COMMIT DELETE ROWS")
    await conn.copy_records_to_table(temp, records=records, columns=list(columns))
    await conn.execute(f"ANALYZE {temp}")
    sets = ", ".join(f"{c} = {expr}" for c, expr in assign.items())
    await conn.execute(f"UPDATE {table} AS t SET {sets} FROM {temp} AS r WHERE t.{key} = r.{key}")
