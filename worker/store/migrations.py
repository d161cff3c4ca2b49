"""Applies the numbered SQL files in ``sql/`` once each, in order, recorded in a table.

A file's checksum is stored with it: editing an applied migration is an error (add a new file
instead). An advisory lock serialises concurrent migrators (several replicas starting at once).

Least privilege: migrations run as the schema's owner; the worker may run as another role that
only reads and writes rows. ``grant_to`` names it: after migrating, it gets DML on every table
(``schema_migrations`` read-only) and nothing else, no DDL. A role without the right to create
anything can still "migrate" a database that is up to date (nothing to do).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATION_LOCK = 0x7265_7669_6E74  # "revint": the advisory lock key for migrations
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def sql_dir() -> Path:
    """The repo's ``sql/`` (editable install) or ``./sql`` (container image working dir)."""
    beside = Path(__file__).resolve().parents[2] / "sql"
    return beside if beside.is_dir() else Path.cwd() / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


async def migrate(
    database_url: str, directory: Path | None = None, grant_to: str | None = None
) -> list[str]:
    """Apply pending migrations; then, with ``grant_to``, grant that role DML on the tables.
    Returns the names applied now."""
    migrations = discover(directory)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        # checked first: CREATE ... IF NOT EXISTS needs the right to create, even when it exists
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            await conn.execute(_LEDGER)
        done = {r["version"]: r for r in await conn.fetch("SELECT * FROM schema_migrations")}
        applied = []
        for m in migrations:
            if m.version in done:
                if done[m.version]["checksum"] != m.checksum:
                    raise RuntimeError(
                        f"migration {m.name} changed after it was applied; add a new file instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied.append(m.name)
        if grant_to:
            await grant_dml(conn, grant_to)
        return applied
    finally:
        await conn.close()


_LEDGER = """CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def grant_dml(conn: asyncpg.Connection, role: str) -> None:
    """``role`` may read and write the rows of every table (and use the sequences); the
    migrations ledger it may only read. It gets no other privilege: PostgreSQL 15+ lets no one
    but the owner create in ``public``. Idempotent; run after every migration (new tables)."""
    r = quote_ident(role)
    async with conn.transaction():
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {r}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"
        )
        await conn.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}")
        await conn.execute(f"REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {r}")
