"""The models a worker scores with: a kind's champion (and, where asked, its challenger),
loaded from the model registry at start, then checked every ``REVINTEL_MODEL_REFRESH_SECONDS``
(a cheap query on the version names; an artifact is read only when its version changed, e.g.
after ``revintel models promote`` or a training). Without a champion, or while the registry
cannot be read, the framework's heuristic scores (or the models last loaded do).

One task per kind: ``churn`` (accounts; the champion only) and ``deal`` (close probability;
champion and challenger, the challenger's scores stored beside the champion's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import asyncpg

from worker.log import get_logger
from worker.models import churn, deal_scoring
from worker.models.deal import DealModel
from worker.models.registry import ArtifactError, ModelVersion
from worker.store import models
from worker.tasks.base import BackgroundTask


class Versioned(Protocol):
    @property
    def version(self) -> str: ...


Loaded = TypeVar("Loaded", bound=Versioned)


def load_churn(mv: ModelVersion) -> churn.LoadedChurnModel:
    return churn.LoadedChurnModel(mv.version, mv.load())


def load_deal(mv: ModelVersion) -> deal_scoring.LoadedDealModel:
    model = mv.load()
    if not isinstance(model, DealModel):
        raise ArtifactError(f"{mv.version} is not a deal model artifact")
    return deal_scoring.LoadedDealModel(mv.version, model)


async def load_deal_models(conn: asyncpg.Connection, share: float = 0.0) -> deal_scoring.DealModels:
    """The deal champion and challenger in the registry now (for a one-off rescoring)."""
    champion = await models.champion(conn, deal_scoring.KIND)
    challenger = await models.challenger(conn, deal_scoring.KIND)
    return deal_scoring.DealModels(
        None if champion is None else load_deal(champion),
        None if challenger is None else load_deal(challenger),
        share,
    )


class Champion(BackgroundTask, Generic[Loaded]):
    """Holds the current champion (``current``) and challenger (``challenger``, when
    ``with_challenger``) of one kind and keeps them fresh."""

    def __init__(
        self,
        kind: str,
        load: Callable[[ModelVersion], Loaded],
        refresh_seconds: float = 30.0,
        with_challenger: bool = False,
    ) -> None:
        self.kind = kind
        self.load = load
        self.refresh_seconds = refresh_seconds
        self.with_challenger = with_challenger
        self.task_name = f"{kind}-champion"
        self.current: Loaded | None = None
        self.challenger: Loaded | None = None
        self.pool: asyncpg.Pool | None = None
        self._first_check = asyncio.Event()
        self.log = get_logger(component=self.task_name)

    def bind(self, pool: asyncpg.Pool) -> Champion[Loaded]:
        self.pool = pool
        return self

    async def ready(self) -> Loaded | None:
        """The champion, once the first check at start has been made (scoring before it would
        use the heuristic where a champion exists)."""
        if self.running:
            await self._first_check.wait()
        return self.current

    async def refresh(self) -> bool:
        """Load the champion and the challenger where they changed; True when one did."""
        assert self.pool is not None, "bind(pool) first"
        async with self.pool.acquire() as conn:
            changed = await self._refresh_role(conn, "champion")
            if self.with_challenger:
                changed = await self._refresh_role(conn, "challenger") or changed
        return changed

    async def _refresh_role(self, conn: asyncpg.Connection, role: str) -> bool:
        attr = "current" if role == "champion" else "challenger"
        held: Loaded | None = getattr(self, attr)
        if role == "champion":
            version = await models.champion_version(conn, self.kind)
        else:
            version = await models.challenger_version(conn, self.kind)
        if version == (held.version if held else None):
            return False
        loaded = None
        if version is not None:
            mv = await (models.champion if role == "champion" else models.challenger)(
                conn, self.kind
            )
            loaded = None if mv is None else self.load(mv)
        setattr(self, attr, loaded)
        self.log.info(
            f"{self.kind}_{role}_loaded",
            version=loaded.version if loaded else "heuristic" if role == "champion" else None,
            previous=held.version if held else None,
        )
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (ArtifactError, OSError, asyncpg.PostgresError) as exc:
                self.log.warning(f"{self.kind}_models_not_loaded", error=repr(exc))
            finally:
                self._first_check.set()
            await asyncio.sleep(self.refresh_seconds)


def churn_champion(refresh_seconds: float = 30.0) -> Champion[churn.LoadedChurnModel]:
    """The churn champion accounts are scored with."""
    return Champion(churn.KIND, load_churn, refresh_seconds)


def deal_champion(refresh_seconds: float = 30.0) -> Champion[deal_scoring.LoadedDealModel]:
    """The deal champion and challenger close probabilities are scored with."""
    return Champion(deal_scoring.KIND, load_deal, refresh_seconds, with_challenger=True)
