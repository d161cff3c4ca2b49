"""The scheduled retrain: every ``REVINTEL_RETRAIN_CRON`` (UTC; weekly by default, Sunday
03:00) one worker trains the deal and the churn models on what is stored and registers each as
the kind's challenger (the champion only where a kind has none yet). It never replaces a
champion: ``revintel models report`` compares them, ``revintel models promote`` decides.

One runner across replicas: a PostgreSQL session advisory lock held while training; a worker
that cannot take it skips that run. A kind with too few outcomes is skipped and said so; a
failing training is logged and the schedule goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from croniter import croniter

from worker.engine import Framework
from worker.log import get_logger
from worker.models.churn import TrainParams
from worker.models.deal_training import DealTrainParams
from worker.models.training import NotEnoughOutcomes
from worker.tasks.base import ScheduledTask, utcnow
from worker.tasks.churn_training import train_churn
from worker.tasks.deal_training import train_deal

DEFAULT_CRON = "0 3 * * 0"
RETRAIN_LOCK = 0x7265_7674_726E  # "revtrn": one retrainer at a time across replicas


def next_retrain(cron: str, after: datetime) -> datetime:
    """The next scheduled instant strictly after ``after`` (aware, UTC fields)."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    return croniter(cron, after.astimezone(UTC)).get_next(datetime)


class Retrainer(ScheduledTask):
    """Retrains the deal and churn models on a cron schedule (challengers only)."""

    task_name = "retrain"

    def __init__(
        self,
        pool: asyncpg.Pool,
        framework: Framework,
        *,
        cron: str = DEFAULT_CRON,
        deal_params: DealTrainParams | None = None,
        churn_params: TrainParams | None = None,
        challenger_share: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not croniter.is_valid(cron):
            raise ValueError(f"not a cron expression: {cron!r}")
        super().__init__(clock)
        self.pool = pool
        self.framework = framework
        self.cron = cron
        self.deal_params = deal_params or DealTrainParams()
        self.churn_params = churn_params or TrainParams()
        self.challenger_share = challenger_share
        self.runs = 0
        self.log = get_logger(component="retrain")

    async def run_once(self) -> dict[str, Any]:
        """Train both kinds now (if this worker holds the lock); what each did, by kind."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETRAIN_LOCK):
                self.log.info("retrain_skipped", reason="another worker is retraining")
                return {}
            try:
                done = {
                    "deal": await self._train(
                        train_deal(
                            self.pool,
                            self.framework,
                            self.deal_params,
                            self._clock(),
                            self.challenger_share,
                        )
                    ),
                    "churn": await self._train(
                        train_churn(self.pool, self.framework, self.churn_params, self._clock())
                    ),
                }
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", RETRAIN_LOCK)
        self.runs += 1
        self.log.info("retrain_done", **done)
        return done

    @staticmethod
    async def _train(training: Awaitable[Any]) -> str:
        """One kind's training: the version saved and its role, or why none was."""
        try:
            done = await training
        except NotEnoughOutcomes as exc:
            return f"skipped: {exc}"
        return f"{done.version.version} ({done.version.role})"

    def due_after(self, after: datetime) -> datetime:
        return next_retrain(self.cron, after)

    async def run_due(self, due: datetime) -> None:
        try:
            await self.run_once()
        except (ValueError, OSError, asyncpg.PostgresError) as exc:
            self.log.error("retrain_failed", error=repr(exc))
