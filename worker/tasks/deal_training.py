"""Training the deal model from the snapshots and closes stored in PostgreSQL, registering the
version, and putting the champion's close probability on every open deal.

``train_deal``: the month-start ``deal_snapshots`` and the closes in ``deals``, cut at the
data's as-of (``data_as_of()``, never the clock) -> ``worker.models.deal_training`` -> a
registry version, the champion when the kind has none, else the challenger -> every open deal
rescored as of the as-of with the champion (and the challenger beside it). ``promote_deal``: a
version made champion, then the same rescoring. Too few closes:
:class:`~worker.models.deal_training.NotEnoughDeals`, nothing stored, the heuristic stays in
charge.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from worker.engine import Framework
from worker.log import get_logger
from worker.models.deal_scoring import KIND, DealModels, LoadedDealModel
from worker.models.deal_training import DealTrainParams, NotEnoughDeals, train_deal_model
from worker.models.registry import SavedVersion
from worker.store import deal_models, models
from worker.tasks.champion import load_deal

log = get_logger(component="deal-training")


async def train_deal(
    pool: asyncpg.Pool,
    framework: Framework,
    params: DealTrainParams,
    trained_at: datetime,
    challenger_share: float = 0.0,
) -> SavedVersion:
    """Train as of the data's as-of, save the version, rescore when it is the champion."""
    async with pool.acquire() as conn:
        cut = await deal_models.data_as_of(conn)
        if cut is None:
            raise NotEnoughDeals(0, 0, params)
        snapshots = await deal_models.month_start_snapshots(conn, cut)
        closes = await deal_models.closed_deals(conn)
        amounts = await deal_models.known_amounts(conn)
    log.info("deal_training_started", snapshots=len(snapshots), closes=len(closes), cut=cut)
    # the fitting is CPU work: off the event loop
    trained = await asyncio.to_thread(train_deal_model, snapshots, closes, amounts, cut, params)
    saved, role = await models.register(pool, KIND, trained.artifact, trained, trained_at)
    log.info("deal_model_saved", version=saved.version, role=role, **trained.samples)
    rescored = 0
    if role == "champion":
        loaded = LoadedDealModel(saved.version, trained.artifact)
        rescored = await _rescore(pool, framework, DealModels(loaded, None, challenger_share))
    return SavedVersion(saved, rescored)


async def promote_deal(
    pool: asyncpg.Pool, framework: Framework, version: str, challenger_share: float = 0.0
) -> SavedVersion:
    """Make ``version`` the deal champion and rescore every open deal with it (the remaining
    challenger, if any, beside it), as of the data's as-of."""
    async with pool.acquire() as conn:
        promoted = await models.promote(conn, KIND, version)
        challenger = await models.challenger(conn, KIND)
    loaded = DealModels(
        load_deal(promoted), None if challenger is None else load_deal(challenger), challenger_share
    )
    return SavedVersion(promoted, await _rescore(pool, framework, loaded))


async def _rescore(pool: asyncpg.Pool, framework: Framework, loaded: DealModels) -> int:
    async with pool.acquire() as conn:
        as_of = await deal_models.data_as_of(conn)
    if as_of is None:
        return 0
    return await deal_models.rescore_open_deals(pool, framework, loaded, as_of)
