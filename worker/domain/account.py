"""Account events merged into an account's state and scored for churn and expansion. Pure: no
I/O, no clock (the event's ``time`` is "now").

Merge rules:
- An event older than the last applied one is stale and changes nothing
  (``apply_account_event`` returns ``None``); the caller also skips event ids already applied.
- An event for an account never created creates it (sources drop messages; the next change
  should still produce the account).
- ``created`` / ``updated`` set the fields they carry; plans are stored as the framework's tier
  key (``"Enterprise Plus"`` -> ``"enterprise_plus"``). Their ``attributes`` merge key by key
  into the account's (a ``null`` value removes the key; at most ``MAX_ATTRIBUTES``).
- ``churned`` / ``renewed`` record the outcome and its time (``outcome``, ``outcome_at``); a
  renewal also sets the next renewal date and ARR it carries. The batch keeps the account as it
  was just before (``AccountOutcome``): what a churn model learns from, without the outcome.
- ``usage_reported`` records the period's usage in ``usage_history`` (oldest first, one entry per
  ``period_end``, a new report for a period replaces it, the last ``MAX_USAGE_PERIODS`` kept).
  Its licensed seats, plan, features used / available update the account only when the period
  is the newest one recorded (a late report about an old period only fills that period).
- ``ticket_opened`` adds the ticket to ``open_tickets`` (for a ticket already open: its new
  severity and escalation, keeping when it was opened); ``urgent`` is the engine's ``critical``.
  ``ticket_closed`` removes it.
- ``payment_failed`` adds the invoice to ``failed_invoices`` or counts one more failure of it
  (amount and days overdue as now reported); ``payment_succeeded`` removes it.
- ``nps_submitted`` sets the latest NPS answer and, when given, the latest CSAT.
- ``renewal_updated`` sets the renewal date, plan, licensed seats (``seats``), ARR and the
  downgrade request it carries.

Scoring inputs (``churn_input``, ``expansion_input``): usage series = the history's logins and
active seats; open tickets, the worst open severity, open escalated tickets; failed payments =
failures on invoices still unpaid; days overdue = the most overdue unpaid invoice, counted on
from its last failure report to "now"; a downgrade request counts as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.account_events import (
    AccountChurned,
    AccountCreated,
    AccountEvent,
    AccountNpsSubmitted,
    AccountPaymentFailed,
    AccountPaymentSucceeded,
    AccountRenewalUpdated,
    AccountRenewed,
    AccountTicketClosed,
    AccountTicketOpened,
    AccountUpdated,
    AccountUsageReported,
)
from worker.engine import (
    ChurnInput,
    ChurnResult,
    ExpansionInput,
    ExpansionResult,
    Framework,
    score_churn,
    score_expansion,
)
from worker.engine.framework import normalize_key
from worker.models.churn import LoadedChurnModel, ModelChurnScore, score_rows
from worker.models.churn_features import RawRow, account_features

MAX_USAGE_PERIODS = 12  # periods kept for the usage trends (sql CHECK allows up to 52)
MAX_OPEN_TICKETS = 1000  # beyond this the oldest open tickets are forgotten
MAX_FAILED_INVOICES = 1000  # beyond this the oldest failed invoices are forgotten
MAX_ATTRIBUTES = 200  # named attributes an account may carry

AttributeValue = str | int | float
Outcome = Literal["churned", "renewed"]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_SEVERITY: dict[str, Severity] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "urgent": "critical",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UsagePeriod(_Frozen):
    period_end: date
    active_seats: int
    logins: int
    features_used: int | None = None


class OpenTicket(_Frozen):
    severity: Severity  # the engine's scale
    escalated: bool = False
    opened_at: datetime


class FailedInvoice(_Frozen):
    amount: Decimal
    days_overdue: int  # as reported with the last failure
    failures: int = 1
    failed_at: datetime  # the last failure


class AccountState(_Frozen):
    """The current state of one account, as stored in the ``accounts`` table (without scores
    and derived counts)."""

    account_id: str
    name: str | None = None
    industry: str | None = None
    owner: str | None = None
    plan: str | None = None
    licensed_seats: int | None = None
    features_available: int | None = None
    features_used: int | None = None
    usage_history: tuple[UsagePeriod, ...] = ()
    open_tickets: dict[str, OpenTicket] = Field(default_factory=dict)
    failed_invoices: dict[str, FailedInvoice] = Field(default_factory=dict)
    failed_payments_total: int = 0
    nps: int | None = None
    csat: float | None = None
    nps_submitted_at: datetime | None = None
    renewal_date: date | None = None
    arr: Decimal | None = None
    downgrade_requested: bool = False
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    outcome: Outcome | None = None  # the latest outcome
    outcome_at: datetime | None = None
    created_at: datetime
    last_event_id: str
    last_event_time: datetime

    # -- derived values (written to the row, never loaded) --------------------------------

    @property
    def latest_usage(self) -> UsagePeriod | None:
        return self.usage_history[-1] if self.usage_history else None

    @property
    def open_ticket_count(self) -> int:
        return len(self.open_tickets)

    @property
    def escalated_tickets(self) -> int:
        return sum(t.escalated for t in self.open_tickets.values())

    @property
    def max_ticket_severity(self) -> str:
        return max(
            (t.severity for t in self.open_tickets.values()),
            key=SEVERITY_RANK.__getitem__,
            default="none",
        )

    @property
    def failed_payments(self) -> int:
        return sum(i.failures for i in self.failed_invoices.values())

    def days_overdue(self, as_of: datetime) -> int:
        """Days the most overdue unpaid invoice is due at ``as_of``."""
        if not self.failed_invoices:
            return 0  # most accounts: asked on every scoring, twice
        today = utc_date(as_of)
        return max(
            (
                i.days_overdue + max(0, (today - utc_date(i.failed_at)).days)
                for i in self.failed_invoices.values()
            ),
            default=0,
        )


def utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _plan(value: str | None) -> str | None:
    return None if value is None else normalize_key(value)


def _oldest_dropped(items: dict[str, Any], limit: int, when: str) -> dict[str, Any]:
    if len(items) <= limit:
        return items
    keep = sorted(items.items(), key=lambda kv: (getattr(kv[1], when), kv[0]))[-limit:]
    return dict(keep)


def _usage_changes(state: AccountState, event: AccountUsageReported) -> dict[str, Any]:
    data = event.data
    used = data.features_used_count
    period = UsagePeriod(
        period_end=data.period_end,
        active_seats=data.active_seats,
        logins=data.logins,
        features_used=used,
    )
    newest = state.latest_usage is None or data.period_end >= state.latest_usage.period_end
    history = {p.period_end: p for p in state.usage_history}
    history[data.period_end] = period
    changes: dict[str, Any] = {
        "usage_history": tuple(history[d] for d in sorted(history))[-MAX_USAGE_PERIODS:]
    }
    if newest:
        if data.licensed_seats is not None:
            changes["licensed_seats"] = data.licensed_seats
        if data.features_available is not None:
            changes["features_available"] = data.features_available
        if used is not None:
            changes["features_used"] = used
        if data.plan is not None:
            changes["plan"] = _plan(data.plan)
    return changes


def _merged_attributes(
    current: dict[str, AttributeValue], update: dict[str, AttributeValue | None]
) -> dict[str, AttributeValue]:
    merged = dict(current)
    for name, value in update.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    if len(merged) > MAX_ATTRIBUTES:
        raise ValueError(f"more than {MAX_ATTRIBUTES} attributes on one account")
    return dict(sorted(merged.items()))


def apply_account_event(state: AccountState | None, event: AccountEvent) -> AccountState | None:
    """Return the state after ``event``, or ``None`` when the event is stale."""
    at = event.time
    if state is None:
        state = AccountState(
            account_id=event.subject, created_at=at, last_event_id=event.id, last_event_time=at
        )
    elif at < state.last_event_time:
        return None
    changes = _fact_changes(state, event)
    if changes is None:
        changes = _activity_changes(state, event)
    changes["last_event_id"] = event.id
    changes["last_event_time"] = at
    return state.model_copy(update=changes)


def _fact_changes(state: AccountState, event: AccountEvent) -> dict[str, Any] | None:
    """Changes of the account's own facts, renewal and outcomes (None: another event)."""
    at = event.time
    changes: dict[str, Any]
    if isinstance(event, AccountCreated | AccountUpdated):
        changes = event.data.model_dump(exclude_none=True, exclude={"attributes"})
        if "plan" in changes:
            changes["plan"] = _plan(changes["plan"])
        if event.data.attributes:
            changes["attributes"] = _merged_attributes(state.attributes, event.data.attributes)
    elif isinstance(event, AccountRenewalUpdated):
        data = event.data
        changes = data.model_dump(exclude_none=True, exclude={"seats", "plan"})
        if data.seats is not None:
            changes["licensed_seats"] = data.seats
        if data.plan is not None:
            changes["plan"] = _plan(data.plan)
    elif isinstance(event, AccountChurned):
        changes = {"outcome": "churned", "outcome_at": at}
    elif isinstance(event, AccountRenewed):
        changes = {"outcome": "renewed", "outcome_at": at, "downgrade_requested": False}
        changes.update(event.data.model_dump(exclude_none=True))
    else:
        return None
    return changes


def _activity_changes(state: AccountState, event: AccountEvent) -> dict[str, Any]:
    """Changes of usage, tickets, payments and survey answers."""
    at = event.time
    changes: dict[str, Any]
    if isinstance(event, AccountUsageReported):
        changes = _usage_changes(state, event)
    elif isinstance(event, AccountTicketOpened):
        previous = state.open_tickets.get(event.data.ticket_id)
        tickets = dict(state.open_tickets)
        tickets[event.data.ticket_id] = OpenTicket(
            severity=_SEVERITY[event.data.severity],
            escalated=event.data.escalated,
            opened_at=previous.opened_at if previous else at,
        )
        changes = {"open_tickets": _oldest_dropped(tickets, MAX_OPEN_TICKETS, "opened_at")}
    elif isinstance(event, AccountTicketClosed):
        tickets = dict(state.open_tickets)
        tickets.pop(event.data.ticket_id, None)
        changes = {"open_tickets": tickets}
    elif isinstance(event, AccountPaymentFailed):
        previous = state.failed_invoices.get(event.data.invoice_id)
        invoices = dict(state.failed_invoices)
        invoices[event.data.invoice_id] = FailedInvoice(
            amount=event.data.amount,
            days_overdue=event.data.days_overdue,
            failures=(previous.failures + 1) if previous else 1,
            failed_at=at,
        )
        changes = {
            "failed_invoices": _oldest_dropped(invoices, MAX_FAILED_INVOICES, "failed_at"),
            "failed_payments_total": state.failed_payments_total + 1,
        }
    elif isinstance(event, AccountPaymentSucceeded):
        invoices = dict(state.failed_invoices)
        invoices.pop(event.data.invoice_id, None)
        changes = {"failed_invoices": invoices}
    elif isinstance(event, AccountNpsSubmitted):
        changes = {"nps": event.data.score, "nps_submitted_at": at}
        if event.data.csat is not None:
            changes["csat"] = event.data.csat
    else:  # pragma: no cover - the union is exhaustive
        raise TypeError(f"unhandled account event {type(event).__name__}")
    return changes


# -- scoring ---------------------------------------------------------------------------------


def churn_input(state: AccountState, as_of: datetime) -> ChurnInput:
    return ChurnInput(
        account_id=state.account_id,
        industry=state.industry,
        logins=[float(p.logins) for p in state.usage_history],
        active_seats=[float(p.active_seats) for p in state.usage_history],
        licensed_seats=state.licensed_seats,
        open_tickets=min(state.open_ticket_count, 1_000_000),
        max_ticket_severity=state.max_ticket_severity,
        escalations=min(state.escalated_tickets, 1_000_000),
        failed_payments=min(state.failed_payments, 10_000),
        days_overdue=min(state.days_overdue(as_of), 36_500),
        downgrade_requests=int(state.downgrade_requested),
        nps=state.nps,
        csat=state.csat,
        renewal_date=state.renewal_date,
        as_of=utc_date(as_of),
    )


def churn_features(state: AccountState, as_of: datetime) -> RawRow:
    """The churn model's raw features of the account as of ``as_of``: the heuristic's signals,
    plan, ARR, feature adoption and the named attributes."""
    return _features(state, churn_input(state, as_of))


def _features(state: AccountState, signals: ChurnInput) -> RawRow:
    """:func:`churn_features` from the account's signals (``churn_input``) already built."""
    adoption = (
        None
        if state.features_used is None or not state.features_available
        else state.features_used / state.features_available
    )
    facts = {
        "plan": state.plan,
        "arr": None if state.arr is None else float(state.arr),
        "feature_adoption": adoption,
    }
    return account_features(signals, state.attributes, facts)


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """An outcome and the account as it was just before it (a churn model's training row)."""

    account_id: str
    event_id: str
    outcome: Outcome
    occurred_at: datetime
    before: AccountState

    @property
    def churned(self) -> bool:
        return self.outcome == "churned"

    def features(self) -> RawRow:
        return churn_features(self.before, self.occurred_at)


def expansion_gaps(state: AccountState) -> list[str]:
    """What the account lacks for an expansion score (empty: it can be scored)."""
    gaps = [
        name
        for name, value in (
            ("plan", state.plan),
            ("licensed_seats", state.licensed_seats),
            ("usage", state.latest_usage),
            ("features_available", state.features_available),
            ("features_used", state.features_used),
        )
        if value is None
    ]
    return gaps


def expansion_input(state: AccountState, churn: ChurnResult | None) -> ExpansionInput | None:
    """The expansion predictor's input (health from the churn risk), or ``None`` when the
    account lacks data for it (``expansion_gaps``)."""
    if expansion_gaps(state):
        return None
    assert state.latest_usage is not None and state.features_available is not None
    assert state.plan is not None and state.licensed_seats is not None
    assert state.features_used is not None
    return ExpansionInput(
        account_id=state.account_id,
        industry=state.industry,
        plan_tier=state.plan,
        licensed_seats=state.licensed_seats,
        active_seats=state.latest_usage.active_seats,
        features_adopted=min(state.features_used, state.features_available),
        features_available=state.features_available,
        churn_risk=None if churn is None else float(churn.score),
        usage=[float(p.logins) for p in state.usage_history],
    )


HEURISTIC = "heuristic"  # the churn model version of the framework's formula


@dataclass(frozen=True, slots=True)
class LearnedChurn:
    """What the learned model said, beside the effective churn result it produced."""

    version: str
    probability: float
    raises: tuple[str, ...]
    lowers: tuple[str, ...]
    heuristic_score: int  # the framework's score, kept for comparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "probability": self.probability,
            "raises": list(self.raises),
            "lowers": list(self.lowers),
            "heuristic_score": self.heuristic_score,
        }


@dataclass(frozen=True, slots=True)
class AccountScore:
    churn: ChurnResult
    expansion: ExpansionResult | None
    expansion_unscored: str | None = None  # why there is no expansion score
    as_of: datetime | None = None  # the "now" scored at
    learned: LearnedChurn | None = None  # None: the heuristic scored the churn

    @property
    def framework_version(self) -> str:
        return self.churn.framework_version

    @property
    def churn_model_version(self) -> str:
        return HEURISTIC if self.learned is None else self.learned.version


def churn_level(score: int, framework: Framework, industry: str | None) -> str:
    lv = framework.for_industry(industry).params.churn.levels
    if score >= lv.critical_min:
        return "critical"
    if score >= lv.high_min:
        return "high"
    return "medium" if score >= lv.medium_min else "low"


def learned_churn(
    heuristic: ChurnResult,
    scored: ModelChurnScore,
    version: str,
    framework: Framework,
    industry: str | None,
) -> tuple[ChurnResult, LearnedChurn]:
    """The effective churn result of a model's score: its score, the framework's level for
    it, the factors raising the risk as drivers; the heuristic's breakdown stays (days to
    renewal for the alert rules)."""
    result = heuristic.model_copy(
        update={
            "score": scored.score,
            "level": churn_level(scored.score, framework, industry),
            "drivers": scored.explanation.raises,
        }
    )
    learned = LearnedChurn(
        version=version,
        probability=scored.probability,
        raises=scored.explanation.raises,
        lowers=scored.explanation.lowers,
        heuristic_score=heuristic.score,
    )
    return result, learned


def score_account(
    state: AccountState,
    framework: Framework,
    now: datetime | None = None,
    churn_model: LoadedChurnModel | None = None,
) -> AccountScore:
    """Churn and expansion of the account with "now" = its last event's time (or a clock
    tick's instant); churn from ``churn_model`` (the champion) when given, else the
    framework's heuristic."""
    as_of = now or state.last_event_time
    churn = score_churn(churn_input(state, as_of), framework)
    learned = None
    if churn_model is not None:
        (scored,) = score_rows(churn_model.model, [churn_features(state, as_of)])
        churn, learned = learned_churn(
            churn, scored, churn_model.version, framework, state.industry
        )
    return _with_expansion(state, framework, churn, as_of, learned)


def _with_expansion(
    state: AccountState,
    framework: Framework,
    churn: ChurnResult,
    as_of: datetime,
    learned: LearnedChurn | None = None,
) -> AccountScore:
    """The account's score with its expansion (which reads the churn risk) added."""
    gaps = expansion_gaps(state)
    if gaps:
        return AccountScore(churn, None, f"missing {', '.join(gaps)}", as_of, learned)
    tiers = framework.for_industry(state.industry).params.expansion.tiers
    if normalize_key(state.plan or "") not in tiers:
        known = ", ".join(sorted(tiers))
        unknown = f"unknown plan tier {state.plan!r} (known: {known})"
        return AccountScore(churn, None, unknown, as_of, learned)
    inputs = expansion_input(state, churn)
    assert inputs is not None
    return AccountScore(churn, score_expansion(inputs, framework), None, as_of, learned)


def score_accounts(
    accounts: Sequence[tuple[AccountState, datetime]],
    framework: Framework,
    churn_model: LoadedChurnModel | None,
) -> list[AccountScore]:
    """:func:`score_account` of many accounts (each with its "now"), the model's predictions
    and explanations in one batch: how a tick's page, or a new champion, rescores stored
    accounts (the same scores as one at a time)."""
    signals = [churn_input(s, at) for s, at in accounts]
    heuristic = [score_churn(i, framework) for i in signals]
    if churn_model is None:
        return [
            _with_expansion(s, framework, h, at)
            for (s, at), h in zip(accounts, heuristic, strict=True)
        ]
    features = [_features(s, i) for (s, _), i in zip(accounts, signals, strict=True)]
    scored = score_rows(churn_model.model, features)
    out = []
    for (state, at), h, m in zip(accounts, heuristic, scored, strict=True):
        churn, learned = learned_churn(h, m, churn_model.version, framework, state.industry)
        out.append(_with_expansion(state, framework, churn, at, learned))
    return out
