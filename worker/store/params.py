"""The ``framework_params`` table: numbers of the framework file that SQL views need."""

from __future__ import annotations

import asyncpg


async def sync_framework_params(pool: asyncpg.Pool, params: dict[str, float]) -> None:
    """Upsert the numbers (e.g. the at-risk alert threshold) at worker start."""
    await pool.executemany(
        "INSERT INTO framework_params (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        list(params.items()),
    )
