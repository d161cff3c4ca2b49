"""What a clock tick does to the open deals of its partition. Pure: no I/O; "now" is the
tick's instant.

Each open deal is rescored as of the tick and its alert level re-evaluated with the same rules
as after an event, so a deal that went quiet becomes at risk (and raises its alert) without any
event of its own. Alert ids name the tick's event id, so a replay raises the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from schemas.clock import ClockTick
from schemas.deal_events import DealStage
from worker.domain.alerts import AlertTrack, evaluate
from worker.domain.batch import Incoming
from worker.domain.deal_batch import DealBatchOutcome, alert_rules, build_alert
from worker.engine import DealFacts, Framework, score_deal


@dataclass(frozen=True, slots=True)
class AgingDeal:
    """An open deal as a tick sees it: what the engine scores, what an alert names, and the
    alert track to evaluate transitions against."""

    deal_id: str
    name: str | None
    company: str | None
    owner: str | None
    amount: Decimal | None
    currency: str
    stage: DealStage
    facts: DealFacts
    track: AlertTrack


def age_deals(
    deals: Iterable[AgingDeal], tick: Incoming[ClockTick], framework: Framework
) -> DealBatchOutcome:
    """Scores and alert transitions of ``deals`` as of the tick's instant."""
    out = DealBatchOutcome()
    rules = alert_rules(framework)
    now = tick.event.time
    for deal in deals:
        score = score_deal(deal.facts, now, framework)
        track, change = evaluate(
            deal.track,
            rules,
            stage=deal.stage,
            value=deal.amount,
            currency=deal.currency,
            health_score=score.health.score,
            health_category=score.health.category,
            probability=score.probability.probability,
        )
        out.scores[deal.deal_id] = score
        out.tracks[deal.deal_id] = track
        out.aged += 1
        if change:
            out.alerts.append(build_alert(deal, score, change, tick))
    return out
