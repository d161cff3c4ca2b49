"""``revintel migrate`` and ``revintel run``: the database schema and the worker itself."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from worker.cli.common import SERVICE_ERRORS, console, fail, framework, settings
from worker.log import configure_logging


def migrate() -> None:
    """Apply pending SQL migrations from sql/ (as REVINTEL_MIGRATE_DATABASE_URL's role, the
    owner, when set: then DATABASE_URL's role gets DML on the tables and nothing more)."""
    from worker.store.migrations import migrate as run_migrations

    current = settings()
    url, role = current.migration_url, current.worker_role
    try:
        applied = asyncio.run(run_migrations(url, grant_to=role))
    except SERVICE_ERRORS as exc:
        fail(f"cannot migrate {url}: {exc} (start it: scripts/services.sh up)")
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    if role:
        console.print(f"role {role}: DML on the tables, no DDL")


def run(
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
) -> None:
    """Run the worker: consume deal and account events, score them, write them to PostgreSQL.

    It waits for PostgreSQL and Kafka (forever, or REVINTEL_STARTUP_DEADLINE seconds; /health
    answers 503 meanwhile); SIGINT or SIGTERM stop it gracefully (exit 0)."""
    from worker.app import StartupTimeout, serve

    current = settings()
    scoring = framework(current)
    configure_logging(current.log_level, current.log_json, current.secrets)
    try:
        asyncio.run(serve(current, migrate_first, scoring))
    except StartupTimeout as exc:
        fail(f"cannot start the worker: {exc}", code=1)


def register(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(run)
