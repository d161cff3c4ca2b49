"""What every ``revintel`` command shares: the consoles, the one error helper (stderr, exit 2,
secrets masked), the one date parser, the one way to open the database, quiet logs."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime
from typing import NoReturn

import asyncpg
import structlog
import typer
from rich.console import Console

from worker.settings import Settings
from worker.store.pool import redact

# Piped output (CI logs, `| less`) gets a readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

# Errors of the database or the broker that a command reports as one line (exit 2).
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def settings() -> Settings:
    """The settings as the environment says now (read at each call, not cached)."""
    return Settings()


def mask_secrets(text: str, current: Settings | None = None) -> str:
    """``text`` with every configured secret masked (the database password for now)."""
    current = current or settings()
    return redact(text, current.database_url)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr, secrets masked, and exit with status 2."""
    err_console.print(
        f"[red]error:[/red] {mask_secrets(message)}", highlight=False, soft_wrap=True, markup=True
    )
    raise typer.Exit(2)


def parse_instant(text: str | None, default: Callable[[], datetime] | None = None) -> datetime:
    """A command's date or date-time option: an ISO date (midnight UTC) or date-time (naive
    means UTC). ``None`` gives ``default()`` (an error when there is no default)."""
    if text is None:
        if default is None:
            raise typer.BadParameter("a date is required")
        return default()
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO date (YYYY-MM-DD) or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_day(text: str | None) -> date | None:
    """An optional ``--as-of`` day (see :func:`parse_instant`); ``None`` stays ``None``."""
    return None if text is None else parse_instant(text).date()


def now() -> datetime:
    """The wall clock, for defaults of test-data commands only (scoring never reads it)."""
    return datetime.now(UTC).replace(microsecond=0)


@contextlib.asynccontextmanager
async def database(current: Settings | None = None) -> AsyncIterator[asyncpg.Pool]:
    """The one way a command opens PostgreSQL: a small pool, closed on exit."""
    from worker.store.pool import create_pool

    current = current or settings()
    pool = await create_pool(current.database_url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Only warnings and errors, on stderr, while a command runs (the table is the output);
    the previous structlog configuration is restored afterwards (also in-process, in tests)."""
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**previous)
