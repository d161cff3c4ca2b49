"""The churn champion a worker scores accounts with: loaded from the model registry at start,
then checked every ``REVINTEL_MODEL_REFRESH_SECONDS`` (a cheap query on the champion's version
name; the artifact is read only when it changed, e.g. after ``revintel models promote``).
Without a champion, or while the registry cannot be read, accounts are scored by the
framework's heuristic (or by the champion last loaded)."""

from __future__ import annotations

import asyncio

import asyncpg

from worker.log import get_logger
from worker.models.churn import KIND, LoadedChurnModel
from worker.models.registry import ArtifactError
from worker.store import models
from worker.tasks.base import BackgroundTask


async def load_champion(conn: asyncpg.Connection, kind: str = KIND) -> LoadedChurnModel | None:
    """The kind's champion, loaded and integrity-checked, or ``None``."""
    mv = await models.champion(conn, kind)
    return None if mv is None else LoadedChurnModel(mv.version, mv.load())


class ChurnChampion(BackgroundTask):
    """Holds the current churn champion (``current``) and keeps it fresh."""

    task_name = "churn-champion"

    def __init__(self, refresh_seconds: float = 30.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.current: LoadedChurnModel | None = None
        self.pool: asyncpg.Pool | None = None
        self._first_check = asyncio.Event()
        self.log = get_logger(component="churn-champion")

    def bind(self, pool: asyncpg.Pool) -> ChurnChampion:
        self.pool = pool
        return self

    async def ready(self) -> LoadedChurnModel | None:
        """The champion, once the first check at start has been made (scoring before it would
        use the heuristic where a champion exists)."""
        if self.running:
            await self._first_check.wait()
        return self.current

    async def refresh(self) -> bool:
        """Load the champion if it changed; True when it did."""
        assert self.pool is not None, "bind(pool) first"
        async with self.pool.acquire() as conn:
            version = await models.champion_version(conn, KIND)
            held = self.current.version if self.current else None
            if version == held:
                return False
            loaded = None if version is None else await load_champion(conn)
        self.current = loaded
        self.log.info("churn_champion_loaded", version=version or "heuristic", previous=held)
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (ArtifactError, OSError, asyncpg.PostgresError) as exc:
                self.log.warning("churn_champion_not_loaded", error=repr(exc))
            finally:
                self._first_check.set()
            await asyncio.sleep(self.refresh_seconds)
