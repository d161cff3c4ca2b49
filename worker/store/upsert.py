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
) -> str:
    """``INSERT INTO table SELECT ... FROM jsonb_to_recordset($1)`` for ``columns`` (name ->
    SQL type). On a conflict on ``conflict`` the ``update`` columns take the new values; with
    ``update`` None the existing row is kept (``DO NOTHING``)."""
    cols = ", ".join(columns)
    recordset = ", ".join(f"{c} {t}" for c, t in columns.items())
    updates = list(update or ())
    action = (
        "DO UPDATE SET\n    " + ",\n    ".join(f"{c} = EXCLUDED.{c}" for c in updates)
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
