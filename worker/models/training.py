"""Pure: what every model's training shares. Too few outcomes of either class: no model."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NotEnoughOutcomes"]


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
