"""``revintel show`` and ``revintel rescore``: the scored deals, and rescoring them after the
framework file changed."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import asyncpg
import typer
from rich.table import Table

from worker.cli.common import SERVICE_ERRORS, console, database, fail, settings

_CATEGORY_STYLE = {"healthy": "green", "warning": "yellow", "critical": "red"}


def show(
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    prefix: Annotated[str, typer.Option(help="only deal ids starting with this")] = "",
) -> None:
    """Print the scored deals as a table, largest first."""

    async def fetch() -> list[asyncpg.Record]:
        async with database() as pool:
            return await pool.fetch(
                """SELECT deal_id, name, company, owner, stage, amount, currency, health_score,
                          health_category, close_probability, risk_factors, scored_at
                   FROM deals WHERE deal_id LIKE $1 || '%'
                   ORDER BY amount DESC NULLS LAST, deal_id LIMIT $2""",
                prefix,
                limit,
            )

    try:
        rows = asyncio.run(fetch())
    except SERVICE_ERRORS as exc:
        fail(f"cannot read deals: {exc}")
    table = Table(title=f"Scored deals ({len(rows)})", show_lines=False)
    for col, justify in (
        ("deal", "left"),
        ("name", "left"),
        ("company", "left"),
        ("stage", "left"),
        ("amount", "right"),
        ("health", "right"),
        ("category", "left"),
        ("P(close)", "right"),
        ("top risk", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "top risk")  # type: ignore[arg-type]
    for r in rows:
        risks = json.loads(r["risk_factors"]) if isinstance(r["risk_factors"], str) else []
        cat = r["health_category"] or ""
        table.add_row(
            r["deal_id"],
            r["name"] or "",
            r["company"] or "",
            r["stage"],
            f"{r['amount']:,.0f} {r['currency']}" if r["amount"] is not None else "",
            str(r["health_score"]),
            f"[{_CATEGORY_STYLE.get(cat, '')}]{cat}[/]",
            f"{r['close_probability']:.0f}%",
            risks[0] if risks else "",
        )
    console.print(table)


def rescore(
    every: Annotated[
        bool, typer.Option("--all", help="also deals already scored with this framework")
    ] = False,
    page: Annotated[int, typer.Option(help="deals per transaction")] = 2000,
) -> None:
    """Recompute stored scores with the current framework file (after changing it)."""
    from worker.domain.deal_batch import rescore as rescore_deals
    from worker.engine import load_framework
    from worker.store import deals

    framework = load_framework(settings().framework_path)

    async def main() -> int:
        done, after = 0, ""
        async with database() as pool:
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    stored = await deals.lock_page(
                        conn, after, page, None if every else framework.version
                    )
                    if not stored:
                        return done
                    await deals.upsert(conn, rescore_deals(stored, framework))
                done += len(stored)
                after = stored[-1].state.deal_id

    try:
        count = asyncio.run(main())
    except SERVICE_ERRORS as exc:
        fail(f"cannot rescore: {exc}")
    console.print(f"rescored {count} deals with framework {framework.version}")


def register(app: typer.Typer) -> None:
    app.command()(show)
    app.command()(rescore)
