"""The ``model_versions`` table: save a trained version with a role, read the champion or the
challenger of a kind, list versions, promote one (the old champion retired in the same
transaction). Every change of role also sends ``NOTIFY revintel_models, '<kind>'``, so a
listener may reload at once rather than at its next poll."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from worker.models.registry import ModelVersion, Role, new_version

CHANNEL = "revintel_models"
_SUMMARY = (
    "kind, version, role, trained_at, train_from, train_to, samples, metrics, params, "
    "artifact_sha256"
)
_FULL = f"{_SUMMARY}, artifact"


class RegistryError(LookupError):
    """A version that does not exist, or a promotion that cannot be made."""


def _version(row: Mapping[str, Any]) -> ModelVersion:
    data = dict(row)
    for c in ("samples", "metrics", "params"):
        if isinstance(data[c], str):
            data[c] = json.loads(data[c])
    # a summary row has no artifact: loading it then fails its integrity check, never silently
    data.setdefault("artifact", b"")
    return ModelVersion.model_validate(data)


async def save(conn: asyncpg.Connection, mv: ModelVersion, role: Role) -> ModelVersion:
    """Insert ``mv`` with ``role``; the kind's current holder of that role (champion or
    challenger) is retired first, in the same transaction. Returns the saved version."""
    async with conn.transaction():
        await _lock_kind(conn, mv.kind)
        if role != "retired":
            await conn.execute(
                "UPDATE model_versions SET role = 'retired', role_changed_at = now() "
                "WHERE kind = $1 AND role = $2",
                mv.kind,
                role,
            )
        await conn.execute(
            f"INSERT INTO model_versions ({_FULL}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10, $11)",
            mv.kind,
            mv.version,
            role,
            mv.trained_at,
            mv.train_from,
            mv.train_to,
            json.dumps(mv.samples),
            json.dumps(mv.metrics),
            json.dumps(mv.params),
            mv.artifact_sha256,
            mv.artifact,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, mv.kind)
    return mv.model_copy(update={"role": role})


async def _lock_kind(conn: asyncpg.Connection, kind: str) -> None:
    """Serialise role changes of one kind (two trainers, or a training and a promotion)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('model_versions:' || $1))", kind)


async def _by_role(conn: asyncpg.Connection, kind: str, role: Role) -> ModelVersion | None:
    row = await conn.fetchrow(
        f"SELECT {_FULL} FROM model_versions WHERE kind = $1 AND role = $2", kind, role
    )
    return None if row is None else _version(row)


async def champion(conn: asyncpg.Connection, kind: str) -> ModelVersion | None:
    """The kind's champion with its artifact, or ``None``."""
    return await _by_role(conn, kind, "champion")


async def challenger(conn: asyncpg.Connection, kind: str) -> ModelVersion | None:
    """The kind's challenger with its artifact, or ``None``."""
    return await _by_role(conn, kind, "challenger")


async def champion_version(conn: asyncpg.Connection, kind: str) -> str | None:
    """Only the champion's version name (a cheap check before reloading an artifact)."""
    return await conn.fetchval(
        "SELECT version FROM model_versions WHERE kind = $1 AND role = 'champion'", kind
    )


async def challenger_version(conn: asyncpg.Connection, kind: str) -> str | None:
    """Only the challenger's version name."""
    return await conn.fetchval(
        "SELECT version FROM model_versions WHERE kind = $1 AND role = 'challenger'", kind
    )


async def get(conn: asyncpg.Connection, kind: str, version: str) -> ModelVersion | None:
    """One version with its artifact."""
    row = await conn.fetchrow(
        f"SELECT {_FULL} FROM model_versions WHERE kind = $1 AND version = $2", kind, version
    )
    return None if row is None else _version(row)


async def versions(conn: asyncpg.Connection, kind: str | None = None) -> list[ModelVersion]:
    """Every version (of ``kind``, or of all kinds), newest first, *without* artifacts
    (``artifact`` is empty: use :func:`get` to load one)."""
    rows = await conn.fetch(
        f"SELECT {_SUMMARY} FROM model_versions WHERE $1::text IS NULL OR kind = $1 "
        "ORDER BY kind, trained_at DESC, version DESC",
        kind,
    )
    return [_version(r) for r in rows]


async def promote(conn: asyncpg.Connection, kind: str, version: str) -> ModelVersion:
    """Make ``version`` the kind's champion; the previous champion becomes ``retired``. One
    transaction. Returns the new champion (with its artifact)."""
    async with conn.transaction():
        await _lock_kind(conn, kind)
        target = await conn.fetchval(
            "SELECT role FROM model_versions WHERE kind = $1 AND version = $2", kind, version
        )
        if target is None:
            raise RegistryError(f"no {kind} model version {version!r}")
        if target != "champion":
            await conn.execute(
                "UPDATE model_versions SET role = 'retired', role_changed_at = now() "
                "WHERE kind = $1 AND role = 'champion'",
                kind,
            )
            await conn.execute(
                "UPDATE model_versions SET role = 'champion', role_changed_at = now() "
                "WHERE kind = $1 AND version = $2",
                kind,
                version,
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, kind)
        promoted = await get(conn, kind, version)
    assert promoted is not None
    return promoted


async def register(
    pool: asyncpg.Pool, kind: str, artifact: Any, trained: Any, trained_at: datetime
) -> tuple[ModelVersion, Role]:
    """A freshly trained model (``trained``: its window, samples, metrics and params) saved
    as a version of ``kind``: the champion when the kind has none, else the challenger."""
    mv = new_version(
        kind,
        artifact,
        trained_at=trained_at,
        train_from=trained.train_from,
        train_to=trained.train_to,
        samples=trained.samples,
        metrics=trained.metrics,
        params=trained.params,
    )
    async with pool.acquire() as conn:
        role: Role = "challenger" if await champion_version(conn, kind) else "champion"
        return await save(conn, mv, role), role
