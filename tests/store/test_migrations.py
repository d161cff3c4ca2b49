"""worker/store/migrations.py: discovery without services; applying, re-applying and the
checksum guard against real PostgreSQL."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import asyncpg
import pytest

from tests.services import fresh_database
from worker.store.migrations import discover, migrate, sql_dir


def test_migrations_are_numbered_and_unique():
    found = discover()
    assert found, "no migrations found in sql/"
    assert [m.version for m in found] == sorted({m.version for m in found})
    assert found[0].version == 1


async def recorded(url: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A copy of the repository's sql/ to edit."""
    return Path(shutil.copytree(sql_dir(), tmp_path / "sql"))


@pytest.mark.integration
async def test_a_second_migrate_applies_nothing(services, sql_copy: Path):
    async with fresh_database(services.database_url, "revintel_mig") as url:
        first = await recorded(url)  # fresh_database ran the first migrate
        assert [(v, n, c) for v, n, c, _ in first] == [
            (m.version, m.name, m.checksum) for m in discover()
        ]
        assert await migrate(url) == []
        assert await migrate(url, directory=sql_copy) == []  # same files elsewhere: same sums
        assert await recorded(url) == first  # nothing re-applied or re-recorded


@pytest.mark.integration
async def test_a_new_file_is_applied_alone(services, sql_copy: Path):
    async with fresh_database(services.database_url, "revintel_mig") as url:
        first = await recorded(url)
        (sql_copy / "900_extra.sql").write_text("CREATE TABLE migration_probe (id int);\n")
        assert await migrate(url, directory=sql_copy) == ["900_extra.sql"]
        assert await migrate(url, directory=sql_copy) == []
        now = await recorded(url)
        assert now[:-1] == first and now[-1][:2] == (900, "900_extra.sql")


@pytest.mark.integration
async def test_editing_an_applied_migration_is_an_error(services, sql_copy: Path):
    async with fresh_database(services.database_url, "revintel_mig") as url:
        first = await recorded(url)
        edited = sql_copy / "001_deals.sql"
        edited.write_text(edited.read_text() + "\n-- an edit after the fact\n")
        (sql_copy / "900_extra.sql").write_text("CREATE TABLE migration_probe (id int);\n")
        message = "migration 001_deals.sql changed after it was applied; add a new file instead"
        with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
            await migrate(url, directory=sql_copy)
        assert await recorded(url) == first  # the pending file after it was not applied either
