"""``revintel forecast`` and ``revintel dashboard``: run a forecast on demand, show the revenue
dashboard (and write its chart).

Both read ``DATABASE_URL`` (and, to publish,
``KAFKA_BOOTSTRAP_SERVERS`` and ``REVINTEL_FORECASTS_TOPIC``) from the environment at each call.
Errors (database or broker unreachable, no deals to take an as-of from) print a message and
exit with status 2. While they run, only warnings and errors are logged (to stderr).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.console import Console

from schemas.forecasts import ForecastPublished
from worker.cli.common import SERVICE_ERRORS, database, err_console, fail, parse_day, quiet_logs
from worker.cli.common import settings as current_settings
from worker.engine import Framework
from worker.forecast.runs import MAX_MONTHS, ForecastUnavailable
from worker.settings import Settings
from worker.store.pool import safe_url


def _framework(settings: Settings) -> Framework:
    from worker.engine.framework import FrameworkError, load_framework

    try:
        return load_framework(settings.framework_path)
    except FrameworkError as exc:
        fail(f"cannot load the scoring framework: {exc}")


def _coverage_line(f: ForecastPublished) -> str:
    c = f.coverage
    parts = [f"{c.open_deals:,} open deals", f"{c.included:,} in the horizon"]
    if c.overdue:
        parts.append(f"{c.overdue:,} past their expected close date (the overdue line)")
    if c.no_close_date:
        parts.append(f"{c.no_close_date:,} without expected close date (left out)")
    if c.beyond_horizon:
        parts.append(f"{c.beyond_horizon:,} beyond the horizon (left out)")
    if c.no_probability:
        parts.append(f"{c.no_probability:,} unscored (probability 0)")
    return ", ".join(parts)


def forecast(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="forecast as of this date (default: the data's as-of)"),
    ] = None,
    months: Annotated[
        int, typer.Option(min=1, max=MAX_MONTHS, help="months to forecast, from the as-of month")
    ] = 6,
    seed: Annotated[int, typer.Option(help="seed of the Monte-Carlo draws")] = 0,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="also publish to the forecasts topic")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="print the published contract (JSON) instead")
    ] = False,
) -> None:
    """Run a forecast now (kind manual): print it, store the run and its snapshots."""
    from worker.forecast.dashboard import forecast_table
    from worker.forecast.runs import publish_forecast, run_forecast
    from worker.kafka.client import kafka_client, running
    from worker.kafka.producer import durable_producer
    from worker.kafka.topics import ensure_topics, wait_for_kafka

    settings = current_settings()
    console = Console()  # per call: honours COLUMNS as set now
    day = parse_day(as_of)
    framework = _framework(settings)

    async def run() -> ForecastPublished | None:
        async with database(settings) as pool:
            return await run_forecast(
                pool,
                as_of=day,
                kind="manual",
                months=months,
                seed=seed,
                framework_version=framework.version,
                half_life_days=framework.forecast.overdue_half_life_days,
            )

    async def send(result: ForecastPublished) -> None:
        kafka = kafka_client(settings)
        await wait_for_kafka(kafka, within=10.0)
        await ensure_topics(kafka, [settings.forecasts_topic], settings.topic_partitions)
        async with running(durable_producer(kafka)) as producer:
            await publish_forecast(producer, settings.forecasts_topic, result)

    try:
        with quiet_logs():
            result = asyncio.run(run())
    except ForecastUnavailable as exc:
        fail(str(exc) if as_of else f"{exc}; pass --as-of to forecast an empty pipeline")
    except SERVICE_ERRORS as exc:
        fail(f"cannot run the forecast against {safe_url(settings.database_url)}: {exc}")
    if result is None:
        fail("another forecast run is in progress (it holds the lock); try again shortly")
    if json_out:
        print(result.model_dump_json(indent=2))
    else:
        console.print(
            forecast_table(
                result.months,
                f"Forecast as of {result.as_of:%Y-%m-%d} (run {result.run_id}, stored)",
                overdue=result.overdue,
            )
        )
        console.print(_coverage_line(result), highlight=False)
    if publish:
        try:
            with quiet_logs():
                asyncio.run(send(result))
        except (KafkaError, RuntimeError, OSError) as exc:
            fail(f"forecast stored (run {result.run_id}) but not published: {exc}")
        (err_console if json_out else console).print(
            f"published to {settings.forecasts_topic}", highlight=False
        )


def dashboard(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="as of this date (default: the data's as-of)")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="also write the forecast chart (PNG) here")
    ] = None,
    months: Annotated[
        int, typer.Option(min=1, max=MAX_MONTHS, help="months to compute when no run is stored")
    ] = 6,
) -> None:
    """Show the revenue dashboard: KPIs, pipeline by stage, monthly forecast."""
    from worker.forecast.dashboard import load_dashboard, render, write_chart

    settings = current_settings()
    console = Console()
    day = parse_day(as_of)

    async def main():
        async with database(settings) as pool:
            return await load_dashboard(pool, day, months=months)

    try:
        with quiet_logs():
            data = asyncio.run(main())
    except ForecastUnavailable as exc:
        fail(str(exc))
    except SERVICE_ERRORS as exc:
        fail(f"cannot read the dashboard from {safe_url(settings.database_url)}: {exc}")
    console.print(render(data))
    if chart is not None:
        try:
            written = write_chart(data, chart)
        except OSError as exc:
            fail(f"cannot write the chart to {chart}: {exc}")
        console.print(f"wrote chart to {written}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``forecast`` and ``dashboard`` to a Typer app."""
    app.command("forecast")(forecast)
    app.command("dashboard")(dashboard)
