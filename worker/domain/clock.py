"""What a clock tick does to the open deals of its partition. Pure: no I/O; "now" is the
tick's instant.

Each open deal is rescored as of the tick and its alert level re-evaluated with the same rules
as after an event, so a deal that went quiet becomes at risk (and raises its alert) without any
event of its own. Alert ids name the tick's event id, so a replay raises the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.clock import ClockTick
from worker.domain.batch import Incoming
from worker.domain.deal_batch import AgingDeal, DealBatchOutcome, alert_rules, reassess
from worker.engine import Framework, score_deal

__all__ = ["AgingDeal", "age_deals"]


def age_deals(
    deals: Iterable[AgingDeal], tick: Incoming[ClockTick], framework: Framework
) -> DealBatchOutcome:
    """Scores and alert transitions of ``deals`` as of the tick's instant."""
    out = DealBatchOutcome()
    rules = alert_rules(framework)
    now = tick.event.time
    for deal in deals:
        score = score_deal(deal.facts, now, framework)
        track, alert = reassess(deal.track, rules, deal, score, tick)
        out.scores[deal.deal_id] = score
        out.tracks[deal.deal_id] = track
        out.aged += 1
        if alert:
            out.alerts.append(alert)
    return out
