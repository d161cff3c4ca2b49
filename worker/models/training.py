"""Pure: what every model's training shares: too few outcomes of either class is no model; a
run's summary is what the registry stores beside the artifact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["NotEnoughOutcomes", "TrainingSummary"]


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


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    """What a training run says of itself, saved with its version (``store.models.register``)."""

    samples: dict[str, int]  # rows, positive and negative outcomes (and more per kind)
    metrics: dict[str, Any]  # the held-out figures
    params: dict[str, Any]  # what was fitted and how
    train_from: datetime
    train_to: datetime
