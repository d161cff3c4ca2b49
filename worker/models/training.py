"""Pure: what every model's training shares: too few outcomes of either class is no model; the
boosted trees' common settings; a run's summary is what the registry stores beside the
artifact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["NotEnoughOutcomes", "TrainingSummary", "boosted_trees"]


class NotEnoughOutcomes(Exception):
    """Too few outcomes to learn from: no model is stored and the framework's heuristic stays
    in charge. ``needs`` maps each outcome class (e.g. "won", "lost") to (found, needed)."""

    def __init__(self, model: str, counted: str, needs: Mapping[str, tuple[int, int]]) -> None:
        found = " and ".join(f"{n} {name}" for name, (n, _) in needs.items())
        needed = " and ".join(f"{least} {name}" for name, (_, least) in needs.items())
        super().__init__(
            f"{found} {counted}; a {model} model needs at least {needed}: the framework's "
            "heuristic stays in charge"
        )


def boosted_trees(seed: int, **size: Any) -> Any:
    """A histogram gradient boosting classifier as every model here fits one: a slow learning
    rate (0.05) and L2 1.0, since CRM and churn outcomes carry little signal and much noise,
    seeded so that a run can be redone; ``size`` is the model's own trees and iterations."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.05, l2_regularization=1.0, random_state=seed, **size
    )


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What a training run says of itself, saved with its version (``store.models.register``)."""

    samples: dict[str, int]  # rows, positive and negative outcomes (and more per kind)
    metrics: dict[str, Any]  # the held-out figures
    params: dict[str, Any]  # what was fitted and how
    train_from: datetime
    train_to: datetime
