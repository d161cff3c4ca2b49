"""One consumed batch of account events, or a clock tick's accounts: merge, score after every
applied event (or as of the tick), alert transitions. Pure: no I/O.

An account is scored after every event applied to it, with "now" = that event's time, and its
alert level re-evaluated (``worker.domain.account_alerts``), so each transition raises its
alert even when several events of one account arrive in the same batch. A tick rescores the
accounts of its partition as of its instant with the same rules; its alerts name the tick's
event, so a replay raises the same alert ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from schemas.account_events import AccountEvent
from schemas.alerts import AccountAlert, AccountAlertState, AlertCause
from schemas.clock import ClockTick
from worker.domain.account import (
    AccountOutcome,
    AccountScore,
    AccountState,
    apply_account_event,
    score_account,
    score_accounts,
)
from worker.domain.account_alerts import (
    AccountAlertRules,
    AccountTrack,
    AccountTransition,
    evaluate_account,
)
from worker.domain.alerts import alert_id
from worker.domain.batch import Incoming, ScoredOutcome, Stored, fold
from worker.engine import Framework
from worker.models.churn import LoadedChurnModel

AccountIncoming = Incoming[AccountEvent]


class StoredAccount(Stored[AccountState, AccountTrack]):
    __slots__ = ()


@dataclass(slots=True)
class AccountBatchOutcome(
    ScoredOutcome[AccountEvent, AccountState, AccountScore, AccountTrack, AccountAlert]
):
    noun: ClassVar[str] = "accounts"
    # outcomes applied, each with the account as it was before (churn training rows)
    outcomes: list[AccountOutcome] = field(default_factory=list)

    def score_context(self, score: AccountScore) -> dict[str, Any]:
        return {
            "churn_risk": score.churn.score,
            "expansion_score": score.expansion.score if score.expansion else None,
        }

    def rescore(
        self,
        state: AccountState,
        track: AccountTrack,
        cause: Incoming[Any],
        framework: Framework,
        now: datetime | None = None,
        churn_model: LoadedChurnModel | None = None,
    ) -> None:
        """Score ``state`` as of ``now`` (its last event's time by default; churn from
        ``churn_model`` when given, else the heuristic), re-evaluate its alert level and record
        both, with the alert ``cause`` raises, if any."""
        self.assess(
            state, track, score_account(state, framework, now, churn_model), cause, framework
        )

    def assess(
        self,
        state: AccountState,
        track: AccountTrack,
        score: AccountScore,
        cause: Incoming[Any],
        framework: Framework,
    ) -> None:
        """Re-evaluate the alert level of ``state`` scored ``score`` and record both, with the
        alert ``cause`` raises, if any."""
        churn = score.churn
        new_track, change = evaluate_account(
            track,
            account_alert_rules(framework),
            churn_risk=churn.score,
            churn_level=churn.level,
            days_to_renewal=churn.breakdown.days_to_renewal,
            drivers=churn.drivers,
        )
        alert = build_account_alert(state, score, change, cause) if change else None
        self.record(state.account_id, state, score, new_track, alert)  # nothing here can fail


def account_alert_rules(framework: Framework) -> AccountAlertRules:
    a = framework.alerts
    return AccountAlertRules(
        churn_threshold=a.churn_risk_threshold,
        renewal_days=a.renewal_days,
        renewal_churn_min=a.renewal_churn_min,
        recovery_points=a.churn_recovery_points,
    )


def build_account_alert(
    state: AccountState, score: AccountScore, change: AccountTransition, item: Incoming[Any]
) -> AccountAlert:
    event, prev, churn = item.event, change.previous, score.churn
    return AccountAlert(
        entity="account",
        alert_id=alert_id(state.account_id, event.id, change.kind),
        kind=change.kind,
        level=change.level,
        account_id=state.account_id,
        name=state.name,
        owner=state.owner,
        arr=state.arr,
        churn_risk=churn.score,
        churn_level=churn.level,
        renewal_date=state.renewal_date,
        days_to_renewal=churn.breakdown.days_to_renewal,
        reasons=list(change.reasons),
        drivers=list(churn.drivers),
        previous=AccountAlertState(
            level=prev.level, churn_risk=prev.churn_risk, churn_level=prev.churn_level
        ),
        caused_by=AlertCause(event_id=event.id, event_type=event.type, event_time=event.time),
        occurred_at=event.time,
        framework_version=score.framework_version,
    )


def apply_account_batch(
    current: Mapping[str, StoredAccount],
    seen_event_ids: Iterable[str],
    incoming: Iterable[AccountIncoming],
    framework: Framework,
    churn_model: LoadedChurnModel | None = None,
) -> AccountBatchOutcome:
    """Apply events in record order: skip ids already applied (or earlier in the batch) and
    stale events, merge, score after every applied event with "now" = its time and re-evaluate
    the alert level; keep each outcome with the account as it was before it."""
    out = AccountBatchOutcome()

    def apply_one(item: AccountIncoming) -> bool:
        account_id = item.event.subject
        before, track = out.latest(current, account_id, AccountTrack)
        after = apply_account_event(before, item.event)
        if after is None:
            return False
        outcome = _outcome(item, before, after)
        out.rescore(after, track, item, framework, churn_model=churn_model)
        if outcome is not None:
            out.outcomes.append(outcome)
        return True

    return fold(out, seen_event_ids, incoming, apply_one)


def _outcome(
    item: AccountIncoming, before: AccountState | None, after: AccountState
) -> AccountOutcome | None:
    event = item.event
    if event.type not in ("account.churned", "account.renewed") or after.outcome is None:
        return None
    # an outcome for an account never seen: what is known of it is only the outcome itself
    was = before or after.model_copy(update={"outcome": None, "outcome_at": None})
    return AccountOutcome(after.account_id, event.id, after.outcome, event.time, was)


def age_accounts(
    accounts: Iterable[StoredAccount],
    tick: Incoming[ClockTick],
    framework: Framework,
    churn_model: LoadedChurnModel | None = None,
) -> AccountBatchOutcome:
    """Scores and alert transitions of ``accounts`` as of the tick's instant."""
    out = AccountBatchOutcome()
    page = list(accounts)
    # the page scored in one batch: one call of the churn model for all its accounts
    now = tick.event.time
    scores = score_accounts([(a.state, now) for a in page], framework, churn_model)
    for account, score in zip(page, scores, strict=True):
        out.assess(account.state, account.track, score, tick, framework)
        out.aged += 1
    return out
