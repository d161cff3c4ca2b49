"""The deal events folded into states as they were at any past moment, with the worker's own
merge (``worker.domain.deal.apply_event``): no second implementation of the pipeline.

``Replay`` holds, per deal, the state after each of its events; ``at(t)`` gives every deal's
state as of instant ``t`` (events strictly before ``t``), ``open_at(t)`` the open ones, and
``outcomes`` the closes that happened (the export's final outcome, to score and to learn from
only what closed before a cut).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.deal_events import OPEN_STAGES, DealEvent, DealStage
from worker.domain.deal import DealState, apply_event
from worker.models.deal_features import ClosedDeal


@dataclass
class _Track:
    times: list[datetime]
    states: list[DealState]


class Replay:
    def __init__(self, events: Iterable[DealEvent]) -> None:
        tracks: dict[str, _Track] = {}
        for event in sorted(events, key=lambda e: (e.time, e.id)):
            track = tracks.get(event.subject)
            state = apply_event(track.states[-1] if track else None, event)
            if state is None:
                continue
            if track is None:
                tracks[event.subject] = _Track([event.time], [state])
            else:
                track.times.append(event.time)
                track.states.append(state)
        self._tracks = tracks

    def at(self, t: datetime) -> list[DealState]:
        """Every deal created before ``t``, as it was just before ``t``."""
        out = []
        for track in self._tracks.values():
            i = bisect.bisect_left(track.times, t)
            if i:
                out.append(track.states[i - 1])
        return out

    def open_at(self, t: datetime) -> list[DealState]:
        return [s for s in self.at(t) if s.stage in OPEN_STAGES]

    def outcomes(self) -> dict[str, ClosedDeal]:
        """Every deal's final close (deals still open at the end have none)."""
        out = {}
        for deal_id, track in self._tracks.items():
            last = track.states[-1]
            if last.stage in OPEN_STAGES or last.closed_at is None:
                continue
            opened = next((s for s in track.states if s.stage in OPEN_STAGES), last)
            out[deal_id] = ClosedDeal(
                deal_id=deal_id,
                owner=last.owner,
                company=last.company,
                industry=last.industry,
                won=last.stage == DealStage.closed_won,
                closed_at=last.closed_at,
                amount=float(opened.amount) if opened.amount is not None else None,
            )
        return out

    def won_value(self, deal_id: str) -> float:
        last = self._tracks[deal_id].states[-1]
        return float(last.amount or 0) if last.stage == DealStage.closed_won else 0.0

    def created_at(self, deal_id: str) -> datetime:
        return self._tracks[deal_id].states[0].created_at
