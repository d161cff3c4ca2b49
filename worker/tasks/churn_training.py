"""Training the churn model from the outcomes stored in PostgreSQL, registering the version,
and putting the champion's scores on every account.

``train_churn``: the outcomes (``account_outcomes``: accounts as they were before each
``account.churned`` / ``account.renewed``) -> ``worker.models.churn.train`` -> a registry
version, the champion when the kind has none, else the challenger -> when it became champion,
every account's churn rescored with it. ``promote_churn``: a version made champion, then the
same rescoring. Too few outcomes: :class:`~worker.models.churn.NotEnoughData`, nothing stored,
the heuristic stays in charge.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from worker.engine import Framework
from worker.log import get_logger
from worker.models.churn import KIND, LoadedChurnModel, TrainingRow, TrainParams, train
from worker.models.registry import SavedVersion
from worker.store import churn, models

log = get_logger(component="churn-training")


async def train_churn(
    pool: asyncpg.Pool, framework: Framework, params: TrainParams, trained_at: datetime
) -> SavedVersion:
    """Train on every stored outcome, save the version, rescore when it is the champion."""
    async with pool.acquire() as conn:
        outcomes = await churn.outcomes(conn)
    rows = [TrainingRow(o.features(), o.churned, o.occurred_at) for o in outcomes]
    log.info("churn_training_started", outcomes=len(rows))
    # the fitting is CPU work: off the event loop
    trained = await asyncio.to_thread(train, rows, params)
    saved, role = await models.register(pool, KIND, trained.model, trained, trained_at)
    log.info("churn_model_saved", version=saved.version, role=role, **trained.samples)
    rescored = 0
    if role == "champion":
        loaded = LoadedChurnModel(saved.version, trained.model)
        rescored = await churn.rescore(pool, framework, loaded)
    return SavedVersion(saved, rescored)


async def promote_churn(pool: asyncpg.Pool, framework: Framework, version: str) -> SavedVersion:
    """Make ``version`` the churn champion and rescore every account with it."""
    async with pool.acquire() as conn:
        promoted = await models.promote(conn, KIND, version)
    loaded = LoadedChurnModel(promoted.version, promoted.load())
    return SavedVersion(promoted, await churn.rescore(pool, framework, loaded))
