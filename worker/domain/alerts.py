"""When a deal's scores call for an alert. Pure: evaluated after every applied event.

A deal is *at risk* when its value is at or above ``value_threshold`` and either its health
category is warning or critical, or its close probability fell at least ``drop_points`` below
its reference. Once raised for health, it resolves only when health is back at
``health_resolved_min``; once critical, it stays critical until resolved (an escalation is
told once). The reference is the highest probability seen since the deal was last not at
risk; it is frozen while the deal is at risk. Once raised, a drop alert stays raised until the
probability has recovered to less than half the drop below the reference (hysteresis: a deal
hovering at the line does not flap between at risk and resolved). Levels: none < at_risk <
critical (at risk and health critical).

Alerts fire on transitions only:
- none -> at_risk or critical: ``at_risk``
- at_risk -> critical: ``escalated``
- at_risk or critical -> none (recovered, value fell below the threshold, or closed): ``resolved``
critical -> at_risk is still at risk and raises nothing; neither does an unchanged level.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Generic, TypeVar

from schemas.alerts import AlertKind, AlertLevel
from schemas.deal_events import CLOSED_STAGES, DealStage

ALERT_NAMESPACE = uuid.UUID("5f0f8d8e-3c1e-4b7a-9d55-8f3b1f2a6c01")


@dataclass(frozen=True, slots=True)
class AlertRules:
    value_threshold: float
    drop_points: float
    # once raised, a health alert resolves only when health is back at this score (a deal
    # hovering at the warning line does not flap between at risk and resolved)
    health_resolved_min: float = 0


@dataclass(frozen=True, slots=True)
class AlertTrack:
    """What the worker remembers per deal to detect transitions (stored on the deals row)."""

    level: AlertLevel = "none"
    ref_probability: float | None = None
    health_score: int | None = None
    health_category: str | None = None
    close_probability: float | None = None


Track = TypeVar("Track")


@dataclass(frozen=True, slots=True)
class Transition(Generic[Track]):
    """An alert-worthy change of level: what it is, the level after, the track before (a
    deal's or an account's) and why, in words."""

    kind: AlertKind
    level: AlertLevel
    previous: Track
    reasons: tuple[str, ...]


def transition_kind(before: AlertLevel, after: AlertLevel) -> AlertKind | None:
    """The alert a change of level raises: none -> at risk (or critical) is ``at_risk``,
    at_risk -> critical ``escalated``, at risk -> none ``resolved``; anything else nothing."""
    if before == "none" and after != "none":
        return "at_risk"
    if before == "at_risk" and after == "critical":
        return "escalated"
    if before != "none" and after == "none":
        return "resolved"
    return None


def alert_id(deal_id: str, event_id: str, kind: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{deal_id}\x1f{event_id}\x1f{kind}"))


def evaluate(
    track: AlertTrack,
    rules: AlertRules,
    *,
    stage: DealStage,
    value: Decimal | float | None,
    currency: str,
    health_score: int,
    health_category: str,
    probability: float,
) -> tuple[AlertTrack, Transition[AlertTrack] | None]:
    """The deal's new track after a scoring, and the alert it raises, if any."""
    ref = probability if track.ref_probability is None else track.ref_probability
    if track.level == "none":
        ref = max(ref, probability)
    dropped = ref - probability
    big = value is not None and float(value) >= rules.value_threshold
    closed = stage in CLOSED_STAGES

    # which reasons hold; their words only for a transition (a tick re-evaluates every open
    # deal, nearly all of them staying at their level)
    unhealthy = recovering = fell = False
    if not closed and big:
        unhealthy = health_category in ("warning", "critical")
        recovering = (
            not unhealthy and track.level != "none" and health_score < rules.health_resolved_min
        )
        fell = dropped >= (rules.drop_points if track.level == "none" else rules.drop_points / 2)
    if unhealthy or recovering or fell:
        # critical stays critical until resolved: an escalation is told once per episode
        critical = health_category == "critical" or track.level == "critical"
        level: AlertLevel = "critical" if critical else "at_risk"
    else:
        level = "none"

    kind = transition_kind(track.level, level)
    new_ref = probability if kind == "resolved" else ref
    new_track = AlertTrack(level, new_ref, health_score, health_category, probability)
    if kind is None:
        return new_track, None
    # (the value being above the alert threshold is a condition, not a reason: not told)
    reasons: list[str] = []
    if kind != "resolved":
        if unhealthy:
            reasons.append(f"Health is {health_category} ({health_score}/100)")
        elif recovering:
            reasons.append(
                f"Health not yet recovered ({health_score}/100; resolves at "
                f"{rules.health_resolved_min:.0f})"
            )
        if fell:
            reasons.append(
                f"Close probability fell {dropped:.0f} points (from {ref:.0f}% to "
                f"{probability:.0f}%)"
            )
    elif closed:
        reasons = [f"Deal {'won' if stage is DealStage.closed_won else 'lost'}"]
    elif not big:
        reasons = [f"Value fell below the {rules.value_threshold:,.0f} alert threshold"]
    else:
        reasons = [
            f"Recovered: health {health_category} ({health_score}/100), close "
            f"probability {probability:.0f}%"
        ]
    return new_track, Transition(kind, level, replace(track), tuple(reasons))
