"""Pure: the learned close probability as the worker serves it, champion and challenger.

The registry's artifact of kind ``deal`` is a :class:`DealArtifact`: the fitted
:class:`~worker.models.deal.DealModel` (the forecast runs read it as one) with the
:class:`~worker.models.deal_explain.DealProfile` its explanations read. The worker holds the
champion and the challenger (:class:`DealModels`); :func:`score_open` gives each open deal,
seen at its own moment (the event's time or the tick's instant, never the clock), the
champion's close probability with its factors in words and, when there is a challenger, the
challenger's beside it, each model called once for the whole batch.

Split: with ``challenger_share`` s > 0, a deal whose stable hash (the first 8 bytes of the
SHA-256 of its id, as a fraction of 2^64) is below s is *served* the challenger's probability
(and explanation): the same deals always, across workers and restarts. With s = 0 (the
default) the champion serves every deal and the challenger is only stored beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np

from worker.models.deal import DealModel
from worker.models.deal_explain import DealExplanation, DealProfile, effects, explain
from worker.models.openmp import one_openmp_thread

__all__ = [
    "HEURISTIC",
    "KIND",
    "DealArtifact",
    "DealModels",
    "LearnedClose",
    "LoadedDealModel",
    "score_open",
    "served_by_challenger",
]

KIND = "deal"
HEURISTIC = "heuristic"  # the model version of the framework's close probability


@dataclass
class DealArtifact(DealModel):
    """What the registry stores for a deal model version: the fitted
    :class:`~worker.models.deal.DealModel` (a forecast run reads it as one) with the profile
    its explanations read."""

    profile: DealProfile | None = None

    @classmethod
    def of(cls, model: DealModel, profile: DealProfile) -> DealArtifact:
        return cls(**{f.name: getattr(model, f.name) for f in fields(DealModel)}, profile=profile)


@dataclass(frozen=True, slots=True)
class LoadedDealModel:
    """A deal model version as the scoring path holds it (a plain ``DealModel`` scores
    without explanations)."""

    version: str
    model: DealModel

    @property
    def profile(self) -> DealProfile | None:
        return getattr(self.model, "profile", None)


@dataclass(frozen=True, slots=True)
class DealModels:
    """The deal models in charge: none (the heuristic), a champion, and maybe a challenger."""

    champion: LoadedDealModel | None = None
    challenger: LoadedDealModel | None = None
    challenger_share: float = 0.0

    @property
    def active(self) -> bool:
        return self.champion is not None


@dataclass(frozen=True, slots=True)
class LearnedClose:
    """One open deal's learned close probability (percent, 0-100), with the model that
    served it and its factors, and both models' figures side by side."""

    version: str  # the served model's version
    probability: float
    explanation: DealExplanation
    champion_version: str
    champion_probability: float
    challenger_version: str | None = None
    challenger_probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "probability": self.probability,
            "raises": list(self.explanation.raises),
            "lowers": list(self.explanation.lowers),
            "champion": {
                "version": self.champion_version,
                "probability": self.champion_probability,
            },
            "challenger": (
                None
                if self.challenger_version is None
                else {
                    "version": self.challenger_version,
                    "probability": self.challenger_probability,
                }
            ),
        }


def served_by_challenger(deal_id: str, share: float) -> bool:
    """Whether the stable split gives ``deal_id`` the challenger's score."""
    if share <= 0:
        return False
    digest = hashlib.sha256(deal_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


def _percent(p: np.ndarray) -> np.ndarray:
    return np.round(np.clip(p, 0.0, 1.0) * 100.0, 2)


def _explained(
    loaded: LoadedDealModel, deals: Sequence[Any], moments: Sequence[datetime]
) -> tuple[np.ndarray, list[DealExplanation]]:
    """Close probabilities (percent) of ``deals`` with their explanations: one classifier call."""
    model, profile = loaded.model, loaded.profile
    if profile is None:
        return _plain(loaded, deals, moments), [DealExplanation((), ())] * len(deals)
    rows = model.rows_each(deals, moments)
    p, effect = effects(model, rows, len(deals), profile.reference)
    return _percent(p), explain(model, profile, deals, rows, effect)


def _plain(
    loaded: LoadedDealModel, deals: Sequence[Any], moments: Sequence[datetime]
) -> np.ndarray:
    return _percent(loaded.model.predict_each(deals, moments).close_probability)


def score_open(
    models: DealModels, deals: Sequence[Any], moments: Sequence[datetime]
) -> list[LearnedClose]:
    """The learned close probability of each open deal at its moment (``[]`` without a
    champion). ``deals`` carry the attributes :func:`worker.models.deal_features.base_row`
    reads and ``deal_id``."""
    champion, challenger = models.champion, models.challenger
    if champion is None or not deals:
        return []
    # one OpenMP thread: for an event batch the pool's start-up costs more than it saves, and
    # a tick's page runs each tree on its own (worker.models.tree_occlusion): with two threads
    # on 2 cores beside PostgreSQL, the threads' waiting cost 5x the CPU (1.25 ms per deal
    # against 0.24 ms); a tick's partitions and the database use the cores instead
    with one_openmp_thread():
        return _score(models, champion, challenger, deals, moments)


def _score(
    models: DealModels,
    champion: LoadedDealModel,
    challenger: LoadedDealModel | None,
    deals: Sequence[Any],
    moments: Sequence[datetime],
) -> list[LearnedClose]:
    to_challenger = [
        challenger is not None and served_by_challenger(d.deal_id, models.challenger_share)
        for d in deals
    ]
    mine = [i for i, c in enumerate(to_challenger) if not c]
    theirs = [i for i, c in enumerate(to_challenger) if c]
    served: dict[int, tuple[float, DealExplanation]] = {}
    champ_p = np.zeros(len(deals))
    if mine:
        p, why = _explained(champion, [deals[i] for i in mine], [moments[i] for i in mine])
        champ_p[mine] = p
        served.update({i: (float(p[j]), why[j]) for j, i in enumerate(mine)})
    if theirs:
        assert challenger is not None
        champ_p[theirs] = _plain(champion, [deals[i] for i in theirs], [moments[i] for i in theirs])
        p, why = _explained(challenger, [deals[i] for i in theirs], [moments[i] for i in theirs])
        served.update({i: (float(p[j]), why[j]) for j, i in enumerate(theirs)})
    chall_p = None if challenger is None else _plain(challenger, deals, moments)
    return [
        LearnedClose(
            version=(challenger.version if to_challenger[i] and challenger else champion.version),
            probability=served[i][0],
            explanation=served[i][1],
            champion_version=champion.version,
            champion_probability=float(champ_p[i]),
            challenger_version=None if challenger is None else challenger.version,
            challenger_probability=None if chall_p is None else float(chall_p[i]),
        )
        for i in range(len(deals))
    ]
