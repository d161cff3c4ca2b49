"""One consumed batch, from validated events to the rows and alerts to write. Pure: no I/O.

Events are applied in record order (one deal's events share a partition, so that order is the
CRM's). A deal is scored after every event applied to it, with "now" = that event's time, and
its alert level re-evaluated, so each transition raises its alert even when several events of
one deal arrive in the same batch. The stored scores are those after the deal's last event.

When a learned deal model is in charge (``DealModels`` with a champion), each open deal the
batch touched then gets the model's close probability as of its last event, all of them in
one call of each model (``worker.models.deal_scoring``): that is the stored close probability,
with its factors and model version. The framework's scoring after every event stays for the
health score and the alert rules (a probability drop is the framework's); closed deals keep
100 / 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from schemas.alerts import AlertCause, AlertState, DealAlert
from schemas.deal_events import OPEN_STAGES, DealEvent, DealStage
from worker.domain.alerts import AlertRules, AlertTrack, Transition, alert_id, evaluate
from worker.domain.batch import Incoming, ScoredOutcome, Stored, fold
from worker.domain.deal import DealState, apply_event
from worker.engine import (
    DealFacts,
    DealScore,
    DealValuePrediction,
    Framework,
    predict_value_for_deal,
    score_deal,
)
from worker.engine.deal import fast_constructor
from worker.models.deal_scoring import DealModels, LearnedClose, score_open

DealIncoming = Incoming[DealEvent]


class StoredDeal(Stored[DealState, AlertTrack]):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Stint:
    """A deal's time in one stage (``deal_stage_history``); ``left_at`` None while current."""

    deal_id: str
    stage: str
    entered_at: datetime
    left_at: datetime | None = None


@dataclass(slots=True)
class DealBatchOutcome(ScoredOutcome[DealEvent, DealState, DealScore, AlertTrack, DealAlert]):
    stints: list[Stint] = field(default_factory=list)  # stages entered, in order
    # deals with no amount yet: their predicted value. Similar-deal averages are not used, as
    # they depend on what else is in the database when the batch runs, and a replay must give
    # the same state: the prediction is the framework's typical deal for the industry.
    predictions: dict[str, DealValuePrediction] = field(default_factory=dict)
    # open deals scored by a learned model: its close probability replaces the framework's
    learned: dict[str, LearnedClose] = field(default_factory=dict)
    model_error: str | None = None
    noun: ClassVar[str] = "deals"

    def score_context(self, score: DealScore) -> dict[str, Any]:
        return {"health": score.health.score, "probability": score.probability.probability}

    def new_stints(self) -> list[Stint]:
        """Stints entered in this batch, by deal and entry time, with ``left_at`` set where the
        same batch moved the deal on again. Several stage changes at one instant keep the last
        stage (the history is keyed by entry time)."""
        by_entry = {(s.deal_id, s.entered_at): s for s in self.stints}
        ordered = sorted(by_entry.values(), key=lambda s: (s.deal_id, s.entered_at))
        following = [*ordered[1:], None]
        return [
            replace(s, left_at=n.entered_at) if n is not None and n.deal_id == s.deal_id else s
            for s, n in zip(ordered, following, strict=True)
        ]

    def learn_close(self, models: DealModels | None) -> None:
        """The learned close probability of every open deal of the batch, each as of its last
        event (one call per model)."""
        open_deals = [
            s for s in self.states.values() if s.stage in OPEN_STAGES and not s.incomplete
        ]
        self.learn_close_at(models, open_deals, [s.last_event_time for s in open_deals])

    def learn_close_at(
        self, models: DealModels | None, deals: list[Any], moments: list[datetime]
    ) -> None:
        """The learned close probability of ``deals`` at their ``moments``. A model that
        fails leaves the framework's probability in place and says why (``model_error``):
        a broken artifact must not stop the consumer."""
        if models is None or not models.active or not deals:
            return
        try:
            scored = score_open(models, deals, moments)
        except Exception as exc:  # any model failure: the heuristic serves, the log says why
            self.model_error = f"{type(exc).__name__}: {exc}"
            return
        self.learned.update((d.deal_id, c) for d, c in zip(deals, scored, strict=True))

    def predict_missing_values(self, framework: Framework) -> None:
        for deal_id, state in self.states.items():
            if state.amount is None:
                self.predictions[deal_id] = predict_value_for_deal(
                    state.industry, state.stage, None, framework
                )


_new_facts = fast_constructor(DealFacts)


def facts_of(state: DealState) -> DealFacts:
    """What the engine scores: ``DealFacts.from_record(state)``, built positionally from the
    state's fields (a fifth of the time; it runs after every event)."""
    d = state.__dict__
    amount = d["amount"]
    return _new_facts(
        d["stage"],
        None if amount is None else float(amount),
        d["industry"],
        d["lead_score"],
        d["interactions"],
        d["objections_handled"],
        d["has_champion"],
        d["budget_confirmed"],
        d["decision_maker_engaged"],
        len(set(d["competitors"])),
        d["last_activity_at"],
        d["stage_entered_at"],
        d["created_at"],
        d["expected_close_date"],
        d["close_date_pushes"],
    )


def alert_rules(framework: Framework) -> AlertRules:
    return AlertRules(
        value_threshold=framework.alerts.value_threshold,
        drop_points=framework.alerts.probability_drop_points,
        health_resolved_min=framework.alerts.health_resolved_min,
    )


@dataclass(frozen=True, slots=True)
class AgingDeal:
    """An open deal as a clock tick sees it: what the engine scores, what an alert names, and
    the alert track to evaluate transitions against (no pydantic model per deal: a tick may
    age a million)."""

    deal_id: str
    name: str | None
    company: str | None
    owner: str | None
    amount: Decimal | None
    currency: str
    stage: DealStage
    facts: DealFacts
    track: AlertTrack

    def __getattr__(self, name: str) -> Any:
        # what the learned model reads beyond these fields (``base_row``) is in the facts
        if name in _FROM_FACTS:
            return getattr(self.facts, name)
        raise AttributeError(name)


_FROM_FACTS = frozenset(DealFacts.__dataclass_fields__) - {"stage", "amount"}


def reassess(
    track: AlertTrack,
    rules: AlertRules,
    deal: DealState | AgingDeal,
    score: DealScore,
    cause: Incoming[Any],
) -> tuple[AlertTrack, DealAlert | None]:
    """The deal's alert track after a scoring, and the alert that ``cause`` raised, if any."""
    new_track, change = evaluate(
        track,
        rules,
        stage=deal.stage,
        value=deal.amount,
        currency=deal.currency,
        health_score=score.health.score,
        health_category=score.health.category,
        probability=score.probability.probability,
    )
    return new_track, build_alert(deal, score, change, cause) if change else None


def build_alert(
    state: DealState | AgingDeal, score: DealScore, change: Transition, item: Incoming[Any]
) -> DealAlert:
    event = item.event
    prev = change.previous
    return DealAlert(
        alert_id=alert_id(state.deal_id, event.id, change.kind),
        kind=change.kind,
        level=change.level,
        deal_id=state.deal_id,
        name=state.name,
        company=state.company,
        owner=state.owner,
        value=state.amount,
        currency=state.currency,
        stage=state.stage.value,
        health_score=score.health.score,
        health_category=score.health.category,
        close_probability=round(score.probability.probability, 2),
        risk_factors=list(score.health.risk_factors),
        reasons=list(change.reasons),
        previous=AlertState(
            level=prev.level,
            health_score=prev.health_score,
            health_category=prev.health_category,
            close_probability=prev.close_probability,
        ),
        caused_by=AlertCause(event_id=event.id, event_type=event.type, event_time=event.time),
        occurred_at=event.time,
        framework_version=score.framework_version,
    )


def apply_deal_batch(
    current: Mapping[str, StoredDeal],
    seen_event_ids: Iterable[str],
    incoming: Iterable[DealIncoming],
    framework: Framework,
    deal_models: DealModels | None = None,
) -> DealBatchOutcome:
    """Merge each event, score the deal with "now" = the event's time, and re-evaluate its
    alert level, so each transition raises its alert even within one batch; then the learned
    close probability of the open deals touched (``deal_models``, when one is in charge)."""
    out = DealBatchOutcome()
    rules = alert_rules(framework)

    def apply_one(item: DealIncoming) -> bool:
        deal_id = item.event.subject
        before, track = out.latest(current, deal_id, AlertTrack)
        after = apply_event(before, item.event)
        if after is None:
            return False
        score = score_deal(facts_of(after), after.last_event_time, framework)
        # an incomplete deal (its creation not seen) raises no alert: its facts are partial
        new_track, alert = (
            (track, None) if after.incomplete else reassess(track, rules, after, score, item)
        )
        # nothing below can fail: the event is applied
        if before is None or after.stage != before.stage:
            out.stints.append(Stint(deal_id, after.stage.value, after.stage_entered_at))
        out.record(deal_id, after, score, new_track, alert)
        return True

    fold(out, seen_event_ids, incoming, apply_one)
    out.predict_missing_values(framework)
    out.learn_close(deal_models)
    return out


def rescore(
    stored: Iterable[StoredDeal], framework: Framework, deal_models: DealModels | None = None
) -> DealBatchOutcome:
    """Scores of stored deals under ``framework`` (and the learned close probability of the
    open ones, with ``deal_models``), each with "now" = its last event's time, as a replay
    would give them. Alert levels are kept: the next event re-evaluates them."""
    out = DealBatchOutcome()
    for deal in stored:
        state = deal.state
        score = score_deal(facts_of(state), state.last_event_time, framework)
        out.record(state.deal_id, state, score, deal.track, None)
    out.predict_missing_values(framework)
    out.learn_close(deal_models)
    return out
