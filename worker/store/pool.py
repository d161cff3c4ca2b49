"""Opening PostgreSQL: the worker's pool, a short-lived pool for commands, and the database
URL as it may be shown (never with its password)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

CONNECT_TIMEOUT = 10.0
# Every execution planned for its parameters: asyncpg prepares each statement once per
# connection, and a generic plan chosen while the tables were small (or had no statistics yet)
# stayed a sequential scan of applied_events and deal_stage_history as they grew (issue 11).
SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def create_pool(database_url: str, max_size: int = 6) -> asyncpg.Pool:
    # batches, the outbox relay, the forecast job and /health each take a connection at times
    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        command_timeout=60,
        timeout=CONNECT_TIMEOUT,
        server_settings=SERVER_SETTINGS,
    )


async def postgres_answers(database_url: str, within: float = 5.0) -> None:
    """Raise unless PostgreSQL accepts a connection (and our credentials) within ``within`` s."""
    conn = await asyncpg.connect(database_url, timeout=within)
    await conn.close()


def safe_url(url: str) -> str:
    """The database URL without its password (also in a query string)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable database URL>"
    if password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{host}")
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit(parts._replace(query=query))


def redact(text: str, database_url: str) -> str:
    """``text`` (an error message) with the URL's password masked wherever it appears."""
    try:
        parts = urlsplit(database_url)
        password, user = parts.password, parts.username
    except ValueError:
        password = user = None
    text = text.replace(database_url, safe_url(database_url))
    # a password equal to the user name (the local revintel:revintel) is shown with that name
    # anyway, as Settings.secrets has it: masking it would mangle every topic and table name
    return text.replace(password, "***") if password and password != user else text
