"""``revintel migrate`` and ``revintel run``: the database schema and the worker itself."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from worker.cli.common import SERVICE_ERRORS, console, fail, settings
from worker.log import configure_logging


def migrate() -> None:
    """Apply pending SQL migrations from sql/."""
    from worker.store.migrations import migrate as run_migrations

    current = settings()
    try:
        applied = asyncio.run(run_migrations(current.database_url))
    except SERVICE_ERRORS as exc:
        fail(f"cannot migrate {current.database_url}: {exc} (start it: scripts/services.sh up)")
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def run(
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Run the worker: consume deal and account events, score them, write them to PostgreSQL."""
    from worker.app import create_app
    from worker.store.migrations import migrate as run_migrations

    current = settings()
    configure_logging(current.log_level, current.log_json)

    async def main() -> None:
        if migrate_first:
            await run_migrations(current.database_url)
        # uvicorn serves /metrics, /health and /asyncapi and runs the consumers in its
        # lifespan; SIGINT / SIGTERM stop it gracefully (the batch in hand is finished first).
        await create_app(current).run(
            logging.WARNING,
            {"host": current.http_host, "port": current.http_port, "access_log": "false"},
        )

    try:
        asyncio.run(main())
    except SERVICE_ERRORS as exc:
        fail(f"cannot start the worker: {exc}")


def register(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(run)
