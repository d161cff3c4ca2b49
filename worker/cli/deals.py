"""``revintel show`` and ``revintel rescore``: the scored deals, and rescoring them after the
framework file changed."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import asyncpg
import typer
from rich.markup import escape
from rich.table import Table

from worker.cli.common import SERVICE_ERRORS, console, database, fail, settings
from worker.cli.common import framework as scoring_framework

_CATEGORY_STYLE = {"healthy": "green", "warning": "yellow", "critical": "red"}


# the columns of ``revintel show``: name, justification, wraps (else cut with an ellipsis)
_COLUMNS = (
    ("deal", "left", False),
    ("name", "left", False),
    ("company", "left", False),
    ("owner", "left", False),
    ("stage", "left", False),
    ("amount", "right", False),
    ("closes", "left", False),
    ("health", "right", False),
    ("category", "left", False),
    ("P(close)", "right", False),
    ("alert", "left", False),
    ("top risk", "left", True),
)
_SHOWN = """deal_id, name, company, owner, stage, amount, currency, expected_close_date,
    health_score, health_category, close_probability, alert_level, risk_factors,
    prob_model_version, score_details -> 'probability' -> 'key_factors' AS key_factors"""
# with --factors: what the close probability rests on, and which model gave it
_FACTOR_COLUMNS = (("P(close) by", "left", True), ("close factors", "left", True))


def deal_filter(
    prefix: str, owner: str | None, stage: str | None, at_risk: bool
) -> tuple[str, list[object]]:
    """The WHERE clause of ``show`` and its arguments ($1...)."""
    clauses, args = ["deal_id LIKE $1 || '%'"], [prefix]
    if owner is not None:
        args.append(owner)
        clauses.append(f"owner ILIKE ${len(args)}")
    if stage is not None:
        args.append(stage.lower())
        clauses.append(f"stage = ${len(args)}")
    if at_risk:
        clauses.append("alert_level <> 'none'")
    return " AND ".join(clauses), args


def show(
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    prefix: Annotated[str, typer.Option(help="only deal ids starting with this")] = "",
    owner: Annotated[str | None, typer.Option(help="only this owner's deals")] = None,
    stage: Annotated[str | None, typer.Option(help="only deals in this stage")] = None,
    at_risk: Annotated[bool, typer.Option("--at-risk", help="only deals alerted at risk")] = False,
    factors: Annotated[
        bool,
        typer.Option(
            "--factors", help="add the close probability's model and its key factors in words"
        ),
    ] = False,
) -> None:
    """Print the scored deals as a table, largest first."""
    where, args = deal_filter(prefix, owner, stage, at_risk)

    async def fetch() -> tuple[int, list[asyncpg.Record]]:
        async with database() as pool:
            total = await pool.fetchval(f"SELECT count(*) FROM deals WHERE {where}", *args)
            rows = await pool.fetch(
                f"""SELECT {_SHOWN} FROM deals WHERE {where}
                    ORDER BY amount DESC NULLS LAST, deal_id LIMIT ${len(args) + 1}""",
                *args,
                limit,
            )
            return total, rows

    try:
        total, rows = asyncio.run(fetch())
    except SERVICE_ERRORS as exc:
        fail(f"cannot read deals: {exc}")
    console.print(deals_table(rows, total, factors))


def deals_table(rows: list[asyncpg.Record], total: int, factors: bool = False) -> Table:
    """Rows of ``show`` as a table that fits the terminal: long cells end in an ellipsis."""
    shown = f"{total:,}" if len(rows) == total else f"{len(rows):,} of {total:,}"
    table = Table(title=f"Scored deals ({shown})", show_lines=False, expand=False)
    for name, justify, wraps in (*_COLUMNS, *(_FACTOR_COLUMNS if factors else ())):
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            max_width=None if wraps else 28,
        )
    for r in rows:
        table.add_row(*_cells(r), *(_factor_cells(r) if factors else ()))
    return table


def _factor_cells(r: asyncpg.Record) -> list[str]:
    """The close probability's model and its first key factors (the learned model's raise
    it, then lower it; the framework's start with the stage's base rate)."""
    raw = r["key_factors"]
    said = json.loads(raw) if isinstance(raw, str) else []
    return [r["prob_model_version"] or "", escape("; ".join(said[:3]))]


def _cells(r: asyncpg.Record) -> list[str]:
    risks = json.loads(r["risk_factors"]) if isinstance(r["risk_factors"], str) else []
    cat = r["health_category"] or ""
    alert = "" if r["alert_level"] in (None, "none") else r["alert_level"]
    return [
        r["deal_id"],
        escape(r["name"] or ""),
        escape(r["company"] or ""),
        escape(r["owner"] or ""),
        r["stage"],
        f"{r['amount']:,.0f} {r['currency']}" if r["amount"] is not None else "",
        str(r["expected_close_date"] or ""),
        "" if r["health_score"] is None else str(r["health_score"]),
        f"[{_CATEGORY_STYLE.get(cat, '')}]{cat}[/]" if cat else "",
        # an incomplete deal (seen only through a change) carries no scores until its creation
        "" if r["close_probability"] is None else f"{r['close_probability']:.0f}%",
        f"[red]{alert}[/]" if alert else "",
        escape(risks[0]) if risks else "",
    ]


def rescore(
    every: Annotated[
        bool, typer.Option("--all", help="also deals already scored with this framework")
    ] = False,
    page: Annotated[int, typer.Option(help="deals per transaction")] = 2000,
) -> None:
    """Recompute stored scores with the current framework file (after changing it); open
    deals keep the close probability of the deal model in charge, if any."""
    from worker.domain.deal_batch import rescore as rescore_deals
    from worker.store import deals
    from worker.tasks.champion import load_deal_models

    framework = scoring_framework()

    async def main() -> int:
        done, after = 0, ""
        async with database() as pool:
            async with pool.acquire() as conn:
                models = await load_deal_models(conn, settings().deal_challenger_share)
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    stored = await deals.lock_page(
                        conn, after, page, None if every else framework.version
                    )
                    if not stored:
                        return done
                    await deals.upsert(conn, rescore_deals(stored, framework, models))
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
