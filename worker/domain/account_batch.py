"""One consumed batch of account events: merge, score after every applied event. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.account_events import AccountEvent
from worker.domain.account import AccountScore, AccountState, apply_account_event, score_account
from worker.domain.batch import BatchOutcome, Incoming, fold
from worker.engine import Framework

AccountIncoming = Incoming[AccountEvent]


@dataclass(slots=True)
class AccountBatchOutcome(BatchOutcome[AccountEvent]):
    states: dict[str, AccountState] = field(default_factory=dict)  # changed accounts, final
    scores: dict[str, AccountScore] = field(default_factory=dict)
    aged: int = 0  # accounts rescored by clock ticks

    def summary(self) -> dict[str, int]:
        return {"accounts": len(self.states), "aged": self.aged}

    def event_context(self, item: Incoming[Any]) -> dict[str, Any]:
        score = self.scores.get(item.event.subject)
        if score is None:  # a tick
            return {}
        return {
            "churn_risk": score.churn.score,
            "expansion_score": score.expansion.score if score.expansion else None,
        }


def apply_account_batch(
    current: Mapping[str, AccountState],
    seen_event_ids: Iterable[str],
    incoming: Iterable[AccountIncoming],
    framework: Framework,
) -> AccountBatchOutcome:
    """Apply events in record order: skip ids already applied (or earlier in the batch) and
    stale events, merge, and score after every applied event with "now" = its time."""
    out = AccountBatchOutcome()

    def apply_one(item: AccountIncoming) -> bool:
        account_id = item.event.subject
        before = out.states.get(account_id) or current.get(account_id)
        after = apply_account_event(before, item.event)
        if after is None:
            return False
        score = score_account(after, framework)
        out.states[account_id] = after
        out.scores[account_id] = score
        return True

    return fold(out, seen_event_ids, incoming, apply_one)
