"""What a clock tick does to the open deals of its partition. Pure: no I/O; "now" is the
tick's instant.

Each open deal is rescored as of the tick and its alert level re-evaluated with the same rules
as after an event, so a deal that went quiet becomes at risk (and raises its alert) without any
event of its own. Alert ids name the tick's event id, so a replay raises the same alerts. With
a learned deal model in charge, the page's close probabilities are the model's as of the tick
(one call per model). ``rescore_open`` scores deals as of one instant without alerts: a new
champion's rescoring of every open deal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from schemas.clock import ClockTick
from worker.domain.batch import Incoming
from worker.domain.deal_batch import AgingDeal, DealBatchOutcome, alert_rules, reassess
from worker.engine import Framework, score_deal
from worker.models.deal_scoring import DealModels

__all__ = ["AgingDeal", "age_deals", "rescore_open"]


def age_deals(
    deals: Sequence[AgingDeal],
    tick: Incoming[ClockTick],
    framework: Framework,
    deal_models: DealModels | None = None,
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
    out.learn_close_at(deal_models, list(deals), [now] * len(deals))
    return out


def rescore_open(
    deals: Sequence[AgingDeal], now: datetime, framework: Framework, models: DealModels | None
) -> DealBatchOutcome:
    """Scores of open ``deals`` as of ``now``, learned where a model is in charge; alert
    levels are kept (the next event or tick re-evaluates them)."""
    out = DealBatchOutcome()
    for deal in deals:
        out.scores[deal.deal_id] = score_deal(deal.facts, now, framework)
        out.tracks[deal.deal_id] = deal.track
    out.learn_close_at(models, list(deals), [now] * len(deals))
    return out
