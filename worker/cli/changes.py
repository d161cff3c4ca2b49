"""``revintel changes``: what changed in a period's pipeline between two daily snapshots."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated

import asyncpg
import typer
from rich.table import Table

from worker.cli.common import SERVICE_ERRORS, console, database, fail, parse_day

LABELS = {
    "opening": "opening pipeline",
    "created": "+ created",
    "pulled_in": "+ pulled in",
    "pushed_out": "- pushed out of the period",
    "won": "- won",
    "lost": "- lost",
    "removed": "- removed (left without closing)",
    "amount_up": "+ amount up",
    "amount_down": "- amount down",
    "stage_moved": "  stage moved (no value)",
    "closing": "closing pipeline",
}


def quarter_of(day: date) -> tuple[date, date]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    nxt = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def changes(
    since: Annotated[str, typer.Option("--since", help="opening snapshot date (ISO)")],
    until: Annotated[
        str | None, typer.Option("--until", help="closing snapshot date (default: the data's)")
    ] = None,
    period_start: Annotated[
        str | None, typer.Option(help="first day of the period (default: quarter of --until)")
    ] = None,
    period_end: Annotated[
        str | None, typer.Option(help="last day of the period (default: quarter of --until)")
    ] = None,
) -> None:
    """Pipeline flow: created, won, lost, pushed out, pulled in, amount up and down, for the
    open deals expected to close in the period, between two daily snapshots."""
    opening = parse_day(since)

    async def fetch() -> list[asyncpg.Record]:
        async with database() as pool:
            closing = parse_day(until) or await pool.fetchval("SELECT data_as_of_date()")
            if closing is None:
                raise LookupError("no data yet")
            start, end = quarter_of(closing)
            start = parse_day(period_start) or start
            end = parse_day(period_end) or end
            return await pool.fetch(
                "SELECT *, $3::date AS period_start, $4::date AS period_end "
                "FROM pipeline_changes($1, $2, $3, $4)",
                opening,
                closing,
                start,
                end,
            )

    try:
        rows = asyncio.run(fetch())
    except LookupError as exc:
        fail(f"cannot report changes: {exc}")
    except SERVICE_ERRORS as exc:
        fail(f"cannot read the snapshots: {exc}")
    first = rows[0]
    if first["opening_date"] is None or first["closing_date"] is None:
        fail(f"no daily snapshot on or before {since}: replay with ticks, or pick a later date")
    table = Table(
        title=f"Pipeline changes {first['opening_date']} -> {first['closing_date']}, deals "
        f"expected to close {first['period_start']} .. {first['period_end']}"
    )
    table.add_column("movement")
    table.add_column("deals", justify="right")
    table.add_column("value", justify="right")
    for r in rows:
        if r["movement"] == "closing":
            table.add_section()
        table.add_row(LABELS[r["movement"]], f"{r['deals']:,}", f"{r['value']:,.2f}")
        if r["movement"] == "opening":
            table.add_section()
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(changes)
