"""What every ``revintel`` command shares: the consoles, the one error helper (stderr, exit 2,
secrets masked), the one date parser, the one way to open the database, quiet logs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, NoReturn

import asyncpg
import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from worker.log import Masker, MaskingStream
from worker.settings import Settings, database_secrets, secrets_in_environment
from worker.store.pool import redact

if TYPE_CHECKING:
    from worker.engine import Framework

# Piped output (CI logs, `| less`) gets a readable width instead of rich's 80 columns.
# COLUMNS, when set, is the width to fit.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err_console = Console(stderr=True)

# Errors of the database or the broker that a command reports as one line (exit 2).
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def settings() -> Settings:
    """The settings as the environment says now (read at each call, not cached); an invalid
    one is reported in one line naming it (exit 2)."""
    try:
        return Settings()
    except ValidationError as exc:
        fail(f"invalid settings: {one_line(exc)}")


def one_line(exc: ValidationError) -> str:
    """A validation error in one line, naming each field (never its value: it may be secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
    )


def framework(current: Settings | None = None) -> Framework:
    """The scoring framework of the settings; a bad file is one line naming the field (exit
    2), not a traceback."""
    from worker.engine import FrameworkError, load_framework

    try:
        return load_framework((current or settings()).framework_path)
    except FrameworkError as exc:
        fail(str(exc))


def configured_secrets() -> list[str]:
    """The secrets of the settings; those of the environment alone when it does not validate."""
    try:
        return Settings().secrets
    except ValidationError:  # a setting is invalid: the command reports it; mask what we can
        url = os.environ.get("DATABASE_URL") or os.environ.get("REVINTEL_DATABASE_URL") or ""
        return [*database_secrets(url), *secrets_in_environment()]


def mask_secrets(text: str, current: Settings | None = None) -> str:
    """``text`` with every configured secret masked (database password, SASL and key
    passwords, secrets in the environment)."""
    if current is None:
        try:
            current = Settings()
        except ValidationError:
            return Masker(configured_secrets())(text)
    return Masker(current.secrets)(redact(text, current.database_url))


def protect_output() -> None:
    """From here on, nothing written to stdout or stderr carries a configured secret: tables,
    errors, tracebacks and log lines alike (the last line of defence behind :func:`fail`)."""
    masker = Masker(configured_secrets())
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, MaskingStream):
            setattr(sys, name, MaskingStream(stream, masker))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr, secrets masked, and exit with status ``code``."""
    err_console.print(
        f"[red]error:[/red] {escape(mask_secrets(message))}",
        highlight=False,
        soft_wrap=True,
        markup=True,
    )
    raise typer.Exit(code)


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
