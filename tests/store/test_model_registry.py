"""The model registry in PostgreSQL: roles, one champion and one challenger per kind,
promotion in one transaction, artifacts that come back intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from worker.models.registry import new_version
from worker.store import models

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 26, 4, 10, tzinfo=UTC)


def _version(kind: str, minutes: int, payload: object) -> object:
    return new_version(
        kind,
        payload,
        trained_at=T + timedelta(minutes=minutes),
        train_from=T - timedelta(days=30),
        train_to=T,
        samples={"rows": 10, "positive": 4, "negative": 6},
        metrics={"auc": 0.8},
        params={"family": "test"},
    )


async def test_save_champion_challenger_promote_and_retire(db: asyncpg.Pool):
    kind = "test_reg"
    first, second, third = (_version(kind, i, {"model": i}) for i in range(3))
    async with db.acquire() as conn:
        saved = await models.save(conn, first, "champion")
        assert saved.role == "champion"
        await models.save(conn, second, "challenger")
        champ = await models.champion(conn, kind)
        assert champ is not None and champ.version == first.version
        assert champ.load() == {"model": 0}
        assert champ.samples == {"rows": 10, "positive": 4, "negative": 6}
        assert champ.train_to == T
        chall = await models.challenger(conn, kind)
        assert chall is not None and chall.version == second.version
        assert await models.champion_version(conn, kind) == first.version

        # a new challenger replaces the old one, which is retired
        await models.save(conn, third, "challenger")
        roles = {v.version: v.role for v in await models.versions(conn, kind)}
        assert roles == {
            first.version: "champion",
            second.version: "retired",
            third.version: "challenger",
        }

        promoted = await models.promote(conn, kind, third.version)
        assert promoted.role == "champion" and promoted.load() == {"model": 2}
        listed = await models.versions(conn, kind)
        assert [v.version for v in listed] == [third.version, second.version, first.version]
        assert {v.version: v.role for v in listed} == {
            first.version: "retired",
            second.version: "retired",
            third.version: "champion",
        }
        assert all(v.artifact == b"" for v in listed)  # a listing carries no artifacts
        assert await models.challenger(conn, kind) is None

        # promoting the champion again changes nothing; an unknown version is refused
        await models.promote(conn, kind, third.version)
        assert await models.champion_version(conn, kind) == third.version
        with pytest.raises(models.RegistryError, match=f"^no {kind} model version 'nope'$"):
            await models.promote(conn, kind, "nope")


async def test_the_database_refuses_a_second_champion(db: asyncpg.Pool):
    kind = "test_two"
    a, b = _version(kind, 0, 1), _version(kind, 1, 2)
    async with db.acquire() as conn:
        await models.save(conn, a, "champion")
        with pytest.raises(asyncpg.UniqueViolationError, match='"model_versions_one_champion"'):
            await conn.execute(
                "INSERT INTO model_versions (kind, version, role, trained_at, artifact, "
                "artifact_sha256) VALUES ($1, $2, 'champion', $3, $4, $5)",
                kind,
                b.version,
                b.trained_at,
                b.artifact,
                b.artifact_sha256,
            )
