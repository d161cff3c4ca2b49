"""One consumed batch, from validated events to the rows to write. Pure: no I/O, no clock.

Events are applied in record order (one deal's events share a partition, so that order is the
CRM's). Each deal touched by the batch is scored once, on its final state, with "now" = the
time of the last event applied to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.codec import Incoming, Rejected
from worker.engine import DealFacts, DealScore, Framework, score_deal
from worker.merge import DealState, apply_event


@dataclass(slots=True)
class BatchOutcome:
    states: dict[str, DealState] = field(default_factory=dict)  # changed deals, final state
    scores: dict[str, DealScore] = field(default_factory=dict)
    applied: list[Incoming] = field(default_factory=list)
    stale: list[Incoming] = field(default_factory=list)
    duplicates: list[Incoming] = field(default_factory=list)
    failed: list[Rejected] = field(default_factory=list)  # deterministic processing failures


def facts_of(state: DealState) -> DealFacts:
    return DealFacts(
        stage=state.stage,
        amount=float(state.amount) if state.amount is not None else None,
        industry=state.industry,
        lead_score=state.lead_score,
        interactions=state.interactions,
        objections_handled=state.objections_handled,
        has_champion=state.has_champion,
        budget_confirmed=state.budget_confirmed,
        decision_maker_engaged=state.decision_maker_engaged,
        competitors=len(state.competitors),
        last_activity_at=state.last_activity_at,
        stage_entered_at=state.stage_entered_at,
        created_at=state.created_at,
        expected_close_date=state.expected_close_date,
        close_date_pushes=state.close_date_pushes,
    )


def apply_batch(
    current: Mapping[str, DealState],
    seen_event_ids: set[str],
    incoming: Iterable[Incoming],
    framework: Framework,
) -> BatchOutcome:
    out = BatchOutcome()
    seen = set(seen_event_ids)
    for item in incoming:
        event = item.event
        if event.id in seen:
            out.duplicates.append(item)
            continue
        seen.add(event.id)
        deal_id = event.subject
        before = out.states.get(deal_id) or current.get(deal_id)
        try:
            after = apply_event(before, event)
        except Exception as exc:  # a bug or an impossible combination: dead-letter, go on
            out.failed.append(Rejected(item.ref, "processing_failed", repr(exc)))
            continue
        if after is None:
            out.stale.append(item)
        else:
            out.states[deal_id] = after
            out.applied.append(item)
    for deal_id, state in out.states.items():
        out.scores[deal_id] = score_deal(facts_of(state), state.last_event_time, framework)
    return out


def deal_row(state: DealState, score: DealScore) -> dict[str, Any]:
    """The ``deals`` row for a scored state, JSON-ready (for ``jsonb_to_recordset``)."""
    row = state.model_dump(mode="json")
    row["competitors"] = list(state.competitors)
    row["health_score"] = score.health.score
    row["health_category"] = score.health.category
    row["close_probability"] = round(score.probability.probability, 2)
    row["risk_factors"] = list(score.health.risk_factors)
    row["score_details"] = {
        "health": score.health.to_dict(),
        "probability": score.probability.to_dict(),
    }
    row["framework_version"] = score.framework_version
    row["scored_at"] = row["last_event_time"]
    return row


def rows_json(outcome: BatchOutcome) -> str:
    return json.dumps([deal_row(s, outcome.scores[d]) for d, s in outcome.states.items()])
