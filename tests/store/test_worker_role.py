"""Least privilege in PostgreSQL: migrations run as the owner, the worker as a role that can
only read and write the rows of its tables (no DDL). The session's workers all run as it
(tests/services.py ``settings``); here, what that role can and cannot do, and how `revintel
migrate` grants it."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.factories import created
from tests.services import WORKER_ROLE, as_role, ensure_worker_role, eventually, publish
from worker.cli import app
from worker.settings import get_settings

pytestmark = pytest.mark.integration

DDL = (
    "CREATE TABLE intruder (id int)",
    "ALTER TABLE deals ADD COLUMN intruder int",
    "CREATE INDEX intruder_idx ON deals (name)",
    "DROP TABLE deals",
    "TRUNCATE deals",
    "DELETE FROM schema_migrations",
    "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
)


@pytest.mark.parametrize("statement", DDL)
async def test_the_worker_role_can_change_no_schema(settings, statement):
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT current_user") == WORKER_ROLE
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_worker_role_reads_and_writes_rows(settings):
    conn = await asyncpg.connect(settings.database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO framework_params (key, value) VALUES ('intruder', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = 2"
        )
        await conn.execute("UPDATE framework_params SET value = 3 WHERE key = 'intruder'")
        await conn.execute("DELETE FROM framework_params WHERE key = 'intruder'")
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") > 0
        await tx.rollback()
    finally:
        await conn.close()


async def test_the_worker_runs_as_that_role(settings, start_worker, producer, db):
    worker = await start_worker(settings)
    assert worker.running is not None
    assert await worker.running.pool.fetchval("SELECT current_user") == WORKER_ROLE
    deal = f"ROLE-{uuid.uuid4().hex[:8]}"
    await publish(producer, settings.deal_topic, [created(deal, amount=12_000)])

    async def landed() -> bool:
        return await db.fetchval("SELECT count(*) FROM deals WHERE deal_id = $1", deal) == 1

    await eventually(landed)


def migrate_cli(monkeypatch, database_url: str, migrate_url: str | None) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    if migrate_url is None:
        monkeypatch.delenv("REVINTEL_MIGRATE_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("REVINTEL_MIGRATE_DATABASE_URL", migrate_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


async def test_migrate_as_the_owner_grants_the_worker_role(services, monkeypatch):
    await ensure_worker_role(services.database_url)
    name = f"revintel_role_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(services.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    owner = urlunsplit(urlsplit(services.database_url)._replace(path=f"/{name}"))
    worker = as_role(owner)
    try:
        # the worker's role alone cannot build the schema: one line, exit 2
        code, out = await asyncio.to_thread(migrate_cli, monkeypatch, worker, None)
        assert code == 2 and "permission denied" in out, out
        # the owner migrates; the worker's role gets DML on every table, nothing more
        code, out = await asyncio.to_thread(migrate_cli, monkeypatch, worker, owner)
        assert code == 0 and "applied: 001_deals.sql" in out, out
        assert f"role {WORKER_ROLE}: DML on the tables, no DDL" in out
        conn = await asyncpg.connect(worker)
        try:
            assert await conn.fetchval("SELECT count(*) FROM deals") == 0
            tables = await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT ("
                "has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') "
                "AND has_table_privilege(c.oid, 'UPDATE') "
                "AND has_table_privilege(c.oid, 'DELETE'))"
            )
            assert [r["relname"] for r in tables] == ["schema_migrations"]
        finally:
            await conn.close()
        # an up-to-date database: the worker's role may "migrate" (nothing to do)
        code, out = await asyncio.to_thread(migrate_cli, monkeypatch, worker, None)
        assert code == 0 and "database is up to date" in out, out
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
