"""One consumed batch, from validated events to the rows and alerts to write. Pure: no I/O.

Events are applied in record order (one deal's events share a partition, so that order is the
CRM's). A deal is scored after every event applied to it, with "now" = that event's time, and
its alert level re-evaluated, so each transition raises its alert even when several events of
one deal arrive in the same batch. The stored scores are those after the deal's last event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from schemas.alerts import AlertCause, AlertState, DealAlert
from worker.alerts import AlertRules, AlertTrack, Transition, alert_id, evaluate
from worker.codec import Incoming, Rejected
from worker.engine import (
    DealFacts,
    DealScore,
    DealValuePrediction,
    Framework,
    predict_value_for_deal,
    score_deal,
)
from worker.merge import DealState, apply_event


@dataclass(frozen=True, slots=True)
class StoredDeal:
    state: DealState
    track: AlertTrack


@dataclass(frozen=True, slots=True)
class Stint:
    """A deal's time in one stage (``deal_stage_history``); ``left_at`` None while current."""

    deal_id: str
    stage: str
    entered_at: datetime
    left_at: datetime | None = None


@dataclass(slots=True)
class BatchOutcome:
    states: dict[str, DealState] = field(default_factory=dict)  # changed deals, final state
    scores: dict[str, DealScore] = field(default_factory=dict)
    tracks: dict[str, AlertTrack] = field(default_factory=dict)
    alerts: list[DealAlert] = field(default_factory=list)
    stints: list[Stint] = field(default_factory=list)  # stages entered, in order
    # deals with no amount yet: their predicted value. Similar-deal averages are not used, as
    # they depend on what else is in the database when the batch runs, and a replay must give
    # the same state: the prediction is the framework's typical deal for the industry.
    predictions: dict[str, DealValuePrediction] = field(default_factory=dict)
    applied: list[Incoming] = field(default_factory=list)
    stale: list[Incoming] = field(default_factory=list)
    duplicates: list[Incoming] = field(default_factory=list)
    failed: list[Rejected] = field(default_factory=list)  # deterministic processing failures


def facts_of(state: DealState) -> DealFacts:
    """What the engine scores (the engine takes any object with the deal's fields)."""
    return DealFacts.from_record(state)


def alert_rules(framework: Framework) -> AlertRules:
    return AlertRules(
        value_threshold=framework.alerts.value_threshold,
        drop_points=framework.alerts.probability_drop_points,
    )


def build_alert(
    state: DealState, score: DealScore, change: Transition, item: Incoming
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


def apply_batch(
    current: Mapping[str, StoredDeal],
    seen_event_ids: set[str],
    incoming: Iterable[Incoming],
    framework: Framework,
) -> BatchOutcome:
    out = BatchOutcome()
    rules = alert_rules(framework)
    seen = set(seen_event_ids)
    for item in incoming:
        event = item.event
        if event.id in seen:
            out.duplicates.append(item)
            continue
        seen.add(event.id)
        deal_id = event.subject
        stored = current.get(deal_id)
        before = out.states.get(deal_id) or (stored.state if stored else None)
        track = out.tracks.get(deal_id) or (stored.track if stored else AlertTrack())
        try:
            after = apply_event(before, event)
            if after is None:
                out.stale.append(item)
                continue
            score = score_deal(facts_of(after), after.last_event_time, framework)
            new_track, change = evaluate(
                track,
                rules,
                stage=after.stage,
                value=after.amount,
                currency=after.currency,
                health_score=score.health.score,
                health_category=score.health.category,
                probability=score.probability.probability,
            )
            alert = build_alert(after, score, change, item) if change else None
        except Exception as exc:  # a bug or an impossible combination: dead-letter, go on
            out.failed.append(Rejected(item.ref, "processing_failed", repr(exc)))
            continue
        if before is None or after.stage != before.stage:
            out.stints.append(Stint(deal_id, after.stage.value, after.stage_entered_at))
        out.states[deal_id] = after
        out.scores[deal_id] = score
        out.tracks[deal_id] = new_track
        out.applied.append(item)
        if alert:
            out.alerts.append(alert)
    for deal_id, state in out.states.items():
        if state.amount is None:
            out.predictions[deal_id] = predict_value_for_deal(
                state.industry, state.stage, None, framework
            )
    return out


def rescore(stored: Iterable[StoredDeal], framework: Framework) -> BatchOutcome:
    """Scores of stored deals under ``framework``, each with "now" = its last event's time, as
    a replay would give them. Alert levels are kept: the next event re-evaluates them."""
    out = BatchOutcome()
    for deal in stored:
        state = deal.state
        out.states[state.deal_id] = state
        out.tracks[state.deal_id] = deal.track
        out.scores[state.deal_id] = score_deal(facts_of(state), state.last_event_time, framework)
        if state.amount is None:
            out.predictions[state.deal_id] = predict_value_for_deal(
                state.industry, state.stage, None, framework
            )
    return out


def deal_row(
    state: DealState,
    score: DealScore,
    track: AlertTrack,
    prediction: DealValuePrediction | None = None,
) -> dict[str, Any]:
    """The ``deals`` row for a scored state (serialised by ``rows_json``)."""
    row = state.model_dump()
    row["competitors"] = list(state.competitors)
    row["health_score"] = score.health.score
    row["health_category"] = score.health.category
    row["close_probability"] = round(score.probability.probability, 2)
    row["risk_factors"] = list(score.health.risk_factors)
    row["score_details"] = {
        "health": score.health.to_dict(),
        "probability": score.probability.to_dict(),
    }
    row["predicted_amount"] = None
    if prediction is not None:
        row["predicted_amount"] = prediction.predicted_value
        row["score_details"]["value"] = prediction.model_dump()
    row["framework_version"] = score.framework_version
    row["scored_at"] = state.last_event_time
    row["alert_level"] = track.level
    row["alert_ref_probability"] = (
        None if track.ref_probability is None else round(track.ref_probability, 2)
    )
    return row


def rows_json(outcome: BatchOutcome) -> str:
    # pydantic-core's encoder: dates, decimals and enums without a JSON-mode dump per row
    return to_json(
        [
            deal_row(s, outcome.scores[d], outcome.tracks[d], outcome.predictions.get(d))
            for d, s in outcome.states.items()
        ]
    ).decode()


def outbox_json(outcome: BatchOutcome) -> str:
    return json.dumps(
        [
            {
                "alert_id": a.alert_id,
                "deal_id": a.deal_id,
                "kind": a.kind,
                "payload": a.model_dump(mode="json"),
                "occurred_at": a.occurred_at.isoformat(),
            }
            for a in outcome.alerts
        ]
    )


def stints_json(outcome: BatchOutcome) -> str:
    """New stints with ``left_at`` set where the same batch moved the deal on again. Several
    stage changes at one instant keep the last stage (the table is keyed by entry time)."""
    by_deal: dict[tuple[str, datetime], Stint] = {}
    for stint in outcome.stints:
        by_deal[(stint.deal_id, stint.entered_at)] = stint
    ordered = sorted(by_deal.values(), key=lambda s: (s.deal_id, s.entered_at))
    rows = []
    for i, stint in enumerate(ordered):
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        if nxt is not None and nxt.deal_id == stint.deal_id:
            stint = replace(stint, left_at=nxt.entered_at)
        rows.append(
            {
                "deal_id": stint.deal_id,
                "stage": stint.stage,
                "entered_at": stint.entered_at.isoformat(),
                "left_at": stint.left_at.isoformat() if stint.left_at else None,
            }
        )
    return json.dumps(rows)
