"""The one builder of set-based writes: a batch's rows travel as one JSON array parameter,
unpacked by ``jsonb_to_recordset`` and inserted (or merged) in one statement, whatever the size
of the batch: no per-row round trips. On the hot path (a consumed batch's deals) the rows are
COPYed (binary) into a temp table instead and merged from there (:class:`CopyUpsert`)."""

from __future__ import annotations

import hashlib
import operator
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
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
        f"FROM {_json_source(columns)}\n"
        f"ON CONFLICT ({', '.join(conflict)}) {action}\n"
    )


def _json_source(columns: Mapping[str, str]) -> str:
    recordset = ", ".join(f"{c} {t}" for c, t in columns.items())
    return f"jsonb_to_recordset($1::jsonb) AS r({recordset})"


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
    deals read the table 200 times); with them it probes ``key``'s index per record. Only
    ``key`` is analyzed: its statistics and the row count are what the join's plan needs."""
    temp = f"_update_{table}"
    spec = ", ".join(f"{c} {t}" for c, t in columns.items())
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} ({spec}) ON COMMIT DELETE ROWS")
    await conn.copy_records_to_table(temp, records=records, columns=list(columns))
    await conn.execute(f"ANALYZE {temp} ({key})")
    sets = ", ".join(f"{c} = {expr}" for c, expr in assign.items())
    await conn.execute(f"UPDATE {table} AS t SET {sets} FROM {temp} AS r WHERE t.{key} = r.{key}")


def _json(value: Any) -> Any:
    return None if value is None else to_json(value).decode()


def _numeric(value: Any) -> Any:
    # a float by its shortest repr, as JSON wrote it (Decimal(float) is its binary expansion,
    # which a numeric(p, 2) column may round the other way)
    return value if value is None or isinstance(value, Decimal | int) else Decimal(repr(value))


def _array(value: Any) -> Any:
    return None if value is None else list(value)


def _encoder(sql_type: str) -> Callable[[Any], Any] | None:
    """What a Python value needs to be COPYed (binary) into a column of ``sql_type``."""
    if sql_type.endswith("[]"):
        return _array
    if sql_type in ("json", "jsonb"):
        return _json
    if sql_type.startswith("numeric"):
        return _numeric
    return None  # as it is (a StrEnum is its value's text)


class CopyUpsert:
    """``INSERT ... ON CONFLICT`` of a batch's rows COPYed (binary) into a session temp table
    (no JSON built in Python nor parsed by the server), merged into ``table`` in one statement,
    in key order (two workers inserting the same new keys take their locks in one order).
    Driven by ``columns`` (name -> SQL type): a column added there is written. Must run inside
    a transaction (the temp table's rows go at commit)."""

    def __init__(
        self,
        table: str,
        columns: Mapping[str, str],
        *,
        conflict: Sequence[str],
        update: Iterable[str] | None = None,
        keep_if_null: Iterable[str] = (),
    ) -> None:
        self.table = table
        self.columns = dict(columns)
        spec = ", ".join(f"{c} {t}" for c, t in self.columns.items())
        self.temp = f"_upsert_{table}_{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
        self.create = f"CREATE TEMP TABLE IF NOT EXISTS {self.temp} ({spec}) ON COMMIT DELETE ROWS"
        source = f"(SELECT * FROM {self.temp} ORDER BY {', '.join(conflict)}) AS r"
        self.merge = insert_from_json(
            table, self.columns, conflict=conflict, update=update, keep_if_null=keep_if_null
        ).replace(_json_source(self.columns), source)
        self._encoders = [
            (i, enc) for i, t in enumerate(self.columns.values()) if (enc := _encoder(t))
        ]
        self._created: weakref.WeakSet[Any] = weakref.WeakSet()
        names = list(self.columns)
        self._pick = operator.itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],)

    def record(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """A row (a mapping with at least ``columns``) as a COPY record."""
        values = list(self._pick(row))
        for i, encode in self._encoders:
            values[i] = encode(values[i])
        return tuple(values)

    async def execute(self, conn: asyncpg.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        records = [self.record(r) for r in rows]
        if not records:
            return
        if not conn.is_in_transaction():
            raise RuntimeError(f"{self.table}: a COPY upsert runs inside a transaction")
        session = getattr(conn, "_con", None) or conn  # a pool's proxy: its connection
        if session not in self._created:  # once per session: a round trip less per batch
            await conn.execute(self.create)
            self._created.add(session)
        try:
            await conn.copy_records_to_table(self.temp, records=records, columns=list(self.columns))
        except asyncpg.UndefinedTableError:  # the session's temp tables were discarded
            self._created.discard(session)
            raise  # the batch is redone, and the table created again
        # fetch, not execute: a statement without parameters goes through execute as a
        # simple query, parsed and planned at every batch (530 against 91 us on an empty
        # table); fetch prepares it once per session and runs the cached plan
        await conn.fetch(self.merge)
