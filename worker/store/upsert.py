"""The one builder of set-based writes: a batch's rows travel as one JSON array parameter,
unpacked by ``jsonb_to_recordset`` and inserted (or merged) in one statement, whatever the size
of the batch: no per-row round trips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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


def update_from_json(
    table: str, key: str, columns: Mapping[str, str], assign: Mapping[str, str]
) -> str:
    """``UPDATE table SET ... FROM jsonb_to_recordset($1)`` matching rows on ``key``:
    ``assign`` maps a column to its new value's SQL (``r.<column>`` is the row's value)."""
    recordset = ", ".join(f"{c} {t}" for c, t in columns.items())
    sets = ",\n    ".join(f"{c} = {expr}" for c, expr in assign.items())
    return (
        f"UPDATE {table} AS t SET\n    {sets}\n"
        f"FROM jsonb_to_recordset($1::jsonb) AS r({recordset})\n"
        f"WHERE t.{key} = r.{key}\n"
    )
