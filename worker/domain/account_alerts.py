"""When an account's churn risk calls for an alert. Pure: evaluated after every applied account
event and on every clock tick, with the same transitions as deal alerts (``worker.domain.alerts``).

An account is *at risk* when either
- its churn risk is at or above ``churn_threshold`` (the churn line), or
- its renewal is within ``renewal_days`` (or overdue: the engine counts a past renewal as due)
  and its churn risk is at or above ``renewal_churn_min`` (the renewal line).
While an alert is raised both lines are ``recovery_points`` lower, so it resolves only once
churn risk has fallen that far below them (hysteresis: an account hovering at a line does not
flap); a renewal moved out of the window (a new renewal date) releases the renewal line at
once. Levels: none < at_risk < critical (at risk and the churn level is critical).

Alerts fire on transitions only:
- none -> at_risk or critical: ``at_risk``
- at_risk -> critical: ``escalated``
- at_risk or critical -> none: ``resolved``
critical -> at_risk is still at risk and raises nothing; neither does an unchanged level.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.alerts import AlertLevel
from worker.domain.alerts import Transition, transition_kind

TOP_DRIVERS = 3  # churn drivers repeated in an alert's reasons (all are in its ``drivers``)


@dataclass(frozen=True, slots=True)
class AccountAlertRules:
    churn_threshold: float
    renewal_days: float
    renewal_churn_min: float
    recovery_points: float


@dataclass(frozen=True, slots=True)
class AccountTrack:
    """What the worker remembers per account to detect transitions: the alert level (stored on
    the accounts row) and the churn it was last scored with (the row's scores)."""

    level: AlertLevel = "none"
    churn_risk: int | None = None
    churn_level: str | None = None


AccountTransition = Transition[AccountTrack]


def renewal_phrase(days: int) -> str:
    if days > 0:
        return f"Renewal in {days} day{'s' if days != 1 else ''}"
    if days == 0:
        return "Renewal due today"
    return f"Renewal overdue by {-days} day{'s' if days != -1 else ''}"


def evaluate_account(
    track: AccountTrack,
    rules: AccountAlertRules,
    *,
    churn_risk: int,
    churn_level: str,
    days_to_renewal: int | None,
    drivers: tuple[str, ...] | list[str] = (),
) -> tuple[AccountTrack, AccountTransition | None]:
    """The account's new track after a scoring, and the alert it raises, if any."""
    raised = track.level != "none"
    margin = rules.recovery_points if raised else 0.0
    churn = f"{churn_risk}/100"
    renewing = days_to_renewal is not None and days_to_renewal <= rules.renewal_days

    reasons: list[str] = []
    if churn_risk >= rules.churn_threshold - margin:
        reasons.append(f"Churn risk {churn} ({churn_level})")
    if renewing and churn_risk >= rules.renewal_churn_min - margin:
        assert days_to_renewal is not None
        reasons.append(f"{renewal_phrase(days_to_renewal)} at churn risk {churn}")
    if reasons:
        level: AlertLevel = "critical" if churn_level == "critical" else "at_risk"
        # the top drivers, but not one a reason already says ("Renewal in 40 days")
        reasons.extend([d for d in drivers if not any(d in r for r in reasons)][:TOP_DRIVERS])
    else:
        level = "none"

    kind = transition_kind(track.level, level)
    if kind == "resolved":
        reasons = [f"Recovered: churn risk {churn} ({churn_level})"]
        if days_to_renewal is not None:
            reasons.append(renewal_phrase(days_to_renewal))

    new_track = AccountTrack(level, churn_risk, churn_level)
    if kind is None:
        return new_track, None
    return new_track, Transition(kind, level, track, tuple(reasons))
