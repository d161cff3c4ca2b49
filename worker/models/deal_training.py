"""Pure: training the deal model the worker serves, from the stored month-start snapshots.

Input: the open deals as they were at each month-start snapshot (``deal_snapshots``), every
close (``deals``: won or lost, with its time), the amounts of the deals known (for the typical
amount per industry) and the cut: the data's as-of, never the clock. The rows and the fit are
:func:`worker.models.deal.training_set` and :func:`~worker.models.deal.fit_deal_model`, as in
the backtest; history starts at the month of the first close (earlier months only teach that
nothing ever closes).

Held-out figures: the last snapshot that has training rows is held out in time. A model is
fitted as if at that snapshot (its earlier snapshots, only months ended by then, the closes
before it), and scores that snapshot's deals that closed by the cut (won = 1, lost = 0):
Brier, log loss, AUC, calibration error (:func:`worker.models.metrics.score_probabilities`),
beside the close probability stored in the snapshot then (``served_then``: what the worker
was serving). The stored artifact is then fitted on every snapshot up to the cut.

Until there are ``min_won`` won and ``min_lost`` lost deals among the training rows (default
200 each) there is no model (:class:`NotEnoughDeals`): the framework's heuristic stays in
charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from worker.models.deal import (
    LOST,
    WON,
    ModelKind,
    Snapshot,
    enough_outcomes,
    fit_deal_model,
    training_set,
)
from worker.models.deal_explain import DealProfile
from worker.models.deal_features import ClosedDeal, build_history
from worker.models.deal_scoring import DealArtifact
from worker.models.metrics import score_probabilities
from worker.models.training import NotEnoughOutcomes, TrainingSummary

__all__ = ["DealTrainParams", "NotEnoughDeals", "TrainedDeal", "train_deal_model"]


class DealTrainParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_won: int = Field(200, ge=1)
    min_lost: int = Field(200, ge=1)
    model: ModelKind = "boosting"
    seed: int = 0


class NotEnoughDeals(NotEnoughOutcomes):
    """Too few closed deals to learn from: the heuristic stays in charge."""

    def __init__(self, won: int, lost: int, params: DealTrainParams) -> None:
        self.won, self.lost = won, lost
        needs = {"won": (won, params.min_won), "lost": (lost, params.min_lost)}
        super().__init__("deal", "deals in the snapshots", needs)


@dataclass(frozen=True)
class KnownAmount:
    """A deal's industry and amount, and when it became known (its creation)."""

    industry: str | None
    amount: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TrainedDeal(TrainingSummary):
    artifact: DealArtifact


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=at.tzinfo or UTC)


def _distinct(data: Any, label: int) -> int:
    return len(set(data.deal_ids[data.labels == label].tolist()))


def _history(closes: Sequence[ClosedDeal], amounts: Sequence[KnownAmount], cut: datetime) -> Any:
    known = [(a.industry, a.amount) for a in amounts if a.created_at < cut]
    return build_history(closes, known, cut)


def _held_out(
    snapshots: Sequence[Snapshot],
    outcomes: dict[str, ClosedDeal],
    amounts: Sequence[KnownAmount],
    held: Snapshot,
    cut: datetime,
    params: DealTrainParams,
) -> dict[str, Any]:
    """The figures of a model fitted as if at ``held.at``, on ``held``'s deals closed by
    ``cut`` (empty when there is nothing to fit or to score)."""
    closes = list(outcomes.values())
    history = _history(closes, amounts, held.at)
    early = training_set([s for s in snapshots if s.at < held.at], outcomes, history, held.at)
    scored = [
        d for d in held.deals if d.deal_id in outcomes and outcomes[d.deal_id].closed_at < cut
    ]
    split = {
        "order": "snapshot time, oldest first",
        "fit": {
            "rows": len(early.labels),
            "won": _distinct(early, WON),
            "lost": _distinct(early, LOST),
        },
        "test": {"snapshot": held.at.isoformat(), "deals": len(held.deals), "closed": len(scored)},
    }
    y = np.array([outcomes[d.deal_id].won for d in scored], dtype=np.float64)
    if not _distinct(early, WON) or not _distinct(early, LOST) or len(set(y.tolist())) < 2:
        return {"split": split}
    model = fit_deal_model(early, history, kind=params.model, seed=params.seed)
    p = model.predict(scored, held.at).close_probability
    then = [getattr(d, "close_probability", None) for d in scored]
    out: dict[str, Any] = {"split": split, "test": score_probabilities(p, y).model_dump()}
    if all(t is not None for t in then):
        served = np.array([float(t) for t in then]) / 100.0
        out["served_then"] = score_probabilities(served, y).model_dump()
    return out


def train_deal_model(
    snapshots: Sequence[Snapshot],
    outcomes: dict[str, ClosedDeal],
    amounts: Sequence[KnownAmount],
    cut: datetime,
    params: DealTrainParams | None = None,
) -> TrainedDeal:
    """The deal model as of ``cut`` (module docstring), or :class:`NotEnoughDeals`."""
    params = params or DealTrainParams()
    closes = [o for o in outcomes.values() if o.closed_at < cut]
    if not closes:
        raise NotEnoughDeals(0, 0, params)
    begin = _month_start(min(o.closed_at for o in closes))
    snaps = sorted((s for s in snapshots if begin <= s.at < cut), key=lambda s: s.at)
    history = _history(list(outcomes.values()), amounts, cut)
    data = training_set(snaps, outcomes, history, cut)
    won, lost = _distinct(data, WON), _distinct(data, LOST)
    if not len(data.labels) or not enough_outcomes(data, params.min_won, params.min_lost):
        raise NotEnoughDeals(won, lost, params)
    used = sorted({float(t) for t in data.taken_at})
    held = next(s for s in snaps if s.at.timestamp() == used[-1])
    metrics = _held_out(snaps, outcomes, amounts, held, cut, params)
    model = fit_deal_model(data, history, kind=params.model, seed=params.seed)
    first = next(s for s in snaps if s.at.timestamp() == used[0])
    return TrainedDeal(
        artifact=DealArtifact.of(model, DealProfile.learn(data, model)),
        samples={
            "rows": len(data.labels),
            "positive": won,
            "negative": lost,
            "snapshots": len(used),
            "deal_snapshots": int(sum(len(s.deals) for s in snaps if s.at.timestamp() in used)),
        },
        metrics=metrics,
        params={
            "family": params.model,
            "calibration": "none",
            "horizon_months": model.months,
            "min_won": params.min_won,
            "min_lost": params.min_lost,
            "seed": params.seed,
            "snapshots": "month starts",
            "cut": cut.isoformat(),
        },
        train_from=first.at,
        train_to=cut,
    )
