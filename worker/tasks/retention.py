"""Prunes the worker's bookkeeping rows every hour (``worker.store.retention``)."""

from __future__ import annotations

import asyncio

import asyncpg

from worker.log import get_logger
from worker.store.retention import prune
from worker.tasks.base import BackgroundTask


class Pruner(BackgroundTask):
    """Prunes every ``interval`` seconds while the worker runs."""

    task_name = "retention"

    def __init__(
        self,
        pool: asyncpg.Pool,
        retention_days: float,
        interval: float = 3600.0,
        snapshot_days: float = 730.0,
    ):
        self.pool = pool
        self.retention_days = retention_days
        self.snapshot_days = snapshot_days
        self.interval = interval
        self.log = get_logger(component="retention")

    async def _run(self) -> None:
        while True:
            try:
                deleted = await prune(self.pool, self.retention_days, self.snapshot_days)
                if any(deleted.values()):
                    self.log.info("pruned", retention_days=self.retention_days, **deleted)
            except Exception as exc:  # retried at the next interval
                self.log.warning("prune_failed", error=repr(exc))
            await asyncio.sleep(self.interval)
