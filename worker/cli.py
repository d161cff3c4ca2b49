"""``revintel``: the command line of the worker (typer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from worker.log import configure_logging
from worker.settings import get_settings

app = typer.Typer(
    help="revenue-intelligence: CRM events in, deal scores and alerts out.", no_args_is_help=True
)
# Piped output (CI logs, `| less`) gets a readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations from sql/."""
    from worker.migrate import migrate as run_migrations

    settings = get_settings()
    try:
        applied = asyncio.run(run_migrations(settings.database_url))
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"cannot migrate {settings.database_url}: {exc} (start it: scripts/services.sh up)")
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@app.command()
def run(
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Run the worker: consume deal events, score them, write them to PostgreSQL."""
    from worker.handlers import create_app
    from worker.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def main() -> None:
        if migrate_first:
            await run_migrations(settings.database_url)
        # uvicorn serves /metrics, /health and /asyncapi and runs the consumer in its lifespan;
        # SIGINT / SIGTERM stop it gracefully (the batch in hand is finished first).
        await create_app(settings).run(
            logging.WARNING,
            {"host": settings.http_host, "port": settings.http_port, "access_log": "false"},
        )

    asyncio.run(main())


@app.command("produce-sample")
def produce_sample(
    wait: Annotated[
        bool, typer.Option(help="wait until the worker has applied every event")
    ] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 120.0,
) -> None:
    """Publish the sample deal event stream (idempotent: fixed event ids)."""
    from worker.data_commands import publish
    from worker.sample import sample_events

    settings = get_settings()
    events = sample_events()

    async def main() -> None:
        topic = await publish(events, settings=settings)
        console.print(
            f"published {len(events)} events for {len({e.subject for e in events})} deals "
            f"to {topic}"
        )
        if wait:
            await _wait_applied(settings.database_url, [e.id for e in events], timeout)

    try:
        asyncio.run(main())
    except (RuntimeError, TimeoutError, OSError) as exc:
        _fail(str(exc))


async def _wait_applied(database_url: str, event_ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM applied_events WHERE event_id = ANY($1::text[])", event_ids
            )
            if done == len(event_ids):
                console.print(f"worker applied all {done} events")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"worker applied {done} of {len(event_ids)} events within {within:.0f}s: "
                    "is `revintel run` running?"
                )
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


_CATEGORY_STYLE = {"healthy": "green", "warning": "yellow", "critical": "red"}


@app.command()
def show(
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    prefix: Annotated[str, typer.Option(help="only deal ids starting with this")] = "",
) -> None:
    """Print the scored deals as a table, largest first."""
    settings = get_settings()

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetch(
                """SELECT deal_id, name, company, owner, stage, amount, currency, health_score,
                          health_category, close_probability, risk_factors, scored_at
                   FROM deals WHERE deal_id LIKE $1 || '%'
                   ORDER BY amount DESC NULLS LAST, deal_id LIMIT $2""",
                prefix,
                limit,
            )
        finally:
            await conn.close()

    try:
        rows = asyncio.run(fetch())
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"cannot read deals: {exc}")
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


alerts_app = typer.Typer(help="Watch the alerts topic.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("tail")
def alerts_tail(
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest alert")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="print raw JSON lines")] = False,
    limit: Annotated[int, typer.Option(help="stop after this many alerts (0: never)")] = 0,
    idle_exit: Annotated[
        float, typer.Option(help="stop after this many idle seconds (0: never)")
    ] = 0.0,
) -> None:
    """Print alerts as they arrive: an example consumer, deduplicating by alert id."""
    from aiokafka import AIOKafkaConsumer

    from schemas.alerts import DealAlert

    settings = get_settings()
    colours = {"at_risk": "yellow", "escalated": "red", "resolved": "green"}

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            settings.alerts_topic,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await consumer.start()
        seen: set[str] = set()
        last = time.monotonic()
        try:
            while not limit or len(seen) < limit:
                batch = await consumer.getmany(timeout_ms=500)
                records = [r for recs in batch.values() for r in recs]
                if not records and idle_exit and time.monotonic() - last > idle_exit:
                    return
                for record in records:
                    last = time.monotonic()
                    alert = DealAlert.model_validate_json(record.value)
                    if alert.alert_id in seen:
                        continue  # redelivered: same id, already handled
                    seen.add(alert.alert_id)
                    if json_lines:
                        print(record.value.decode(), flush=True)
                        continue
                    colour = colours[alert.kind]
                    console.print(
                        f"[{colour}]{alert.kind:>9}[/] {alert.occurred_at:%Y-%m-%d %H:%M} "
                        f"{alert.deal_id} {alert.name or ''} ({alert.company or '?'}) "
                        f"{float(alert.value or 0):,.0f} {alert.currency} "
                        f"health {alert.health_score} {alert.health_category}, "
                        f"P(close) {alert.close_probability:.0f}%: {'; '.join(alert.reasons)}",
                        highlight=False,
                    )
        finally:
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@app.command()
def rescore(
    every: Annotated[
        bool, typer.Option("--all", help="also deals already scored with this framework")
    ] = False,
    page: Annotated[int, typer.Option(help="deals per transaction")] = 2000,
) -> None:
    """Recompute stored scores with the current framework file (after changing it)."""
    from worker import store
    from worker.engine import load_framework
    from worker.pipeline import rescore as rescore_deals
    from worker.pipeline import rows_json

    settings = get_settings()
    framework = load_framework(settings.framework_path)

    async def main() -> int:
        pool = await store.create_pool(settings.database_url)
        done, after = 0, ""
        try:
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    deals = await store.lock_page(
                        conn, after, page, None if every else framework.version
                    )
                    if not deals:
                        return done
                    await store.upsert_deals(conn, rows_json(rescore_deals(deals, framework)))
                done += len(deals)
                after = deals[-1].state.deal_id
        finally:
            await pool.close()

    try:
        count = asyncio.run(main())
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"cannot rescore: {exc}")
    console.print(f"rescored {count} deals with framework {framework.version}")


@app.command()
def asyncapi(
    out: Annotated[Path, typer.Option(help="directory to write asyncapi.json/.html")] = Path(
        "docs"
    ),
) -> None:
    """Export the AsyncAPI document of every topic the worker reads and writes."""
    from faststream.specification import get_asyncapi_html

    from worker.handlers import DealWorker, asyncapi_spec, create_broker

    settings = get_settings()
    spec = asyncapi_spec(create_broker(settings, DealWorker(settings))).to_specification()
    out.mkdir(parents=True, exist_ok=True)
    (out / "asyncapi.json").write_text(spec.to_json())
    (out / "asyncapi.html").write_text(get_asyncapi_html(spec))
    console.print(f"wrote {out / 'asyncapi.json'} and {out / 'asyncapi.html'}")


@app.command("export-schemas")
def export_schemas(
    directory: Annotated[Path | None, typer.Argument(help="default: schemas/json")] = None,
) -> None:
    """Write the JSON Schema of every message contract."""
    from worker.schema_export import export

    for path in export(directory):
        console.print(f"wrote {path}")


def _register_subcommands() -> None:
    from worker.data_commands import register
    from worker.forecast_commands import register as register_forecast
    from worker.score_commands import score_app

    register(app)  # seed, replay
    register_forecast(app)  # forecast, dashboard
    app.add_typer(score_app, name="score")


_register_subcommands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
