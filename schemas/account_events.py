"""Account events: the deal events' CloudEvents 1.0 style envelope around typed account data.

The envelope's ``subject`` is the account id (also the Kafka key, so one account's events stay
in order on one partition). ``time`` is when the change happened in the source system; the
worker treats it as "now" when scoring, never the wall clock.

The data fields are what the churn and expansion predictors need (``ChurnInput``,
``ExpansionInput`` in ``worker.engine``): usage per period (logins, active / licensed seats,
features used), open support tickets by severity and escalation, failed payments and days
overdue, NPS / CSAT answers, the renewal (date, plan, seats, ARR, downgrade request) and the
account's industry and plan.

``attributes`` (on ``created`` / ``updated``) are named facts the source has beyond those
fields, each a string or a number: plan, contract type, tenure in months, monthly charge,
payment method, region... They are merged key by key into the account (``null`` removes one)
and the churn model learns from them. ``account.churned`` and ``account.renewed`` are outcomes:
what the churn model is trained on.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, TypeAdapter, model_validator

from schemas.envelope import Envelope, Money, SaneDate, Strict, Text

Id = Annotated[str, Field(min_length=1, max_length=200)]
Seats = Annotated[int, Field(ge=0, le=10_000_000)]
LicensedSeats = Annotated[int, Field(ge=1, le=10_000_000)]
Count = Annotated[int, Field(ge=0, le=100_000_000)]
FeatureCount = Annotated[int, Field(ge=0, le=100_000)]
FeaturesAvailable = Annotated[int, Field(ge=1, le=100_000)]
Feature = Annotated[str, Field(min_length=1, max_length=200)]
# A plan tier, matched against the framework's [defaults.expansion.tiers] case-insensitively.
Plan = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _\-]{0,59}$")]
TicketSeverity = Literal["low", "medium", "high", "urgent"]
AttributeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
# a string or a finite number (a JSON true/false is refused: send "yes"/"no" or 1/0)
AttributeValue = (
    Annotated[str, Field(max_length=200)]
    | Annotated[StrictInt, Field(ge=-(10**15), le=10**15)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
)
Attributes = Annotated[dict[AttributeName, AttributeValue | None], Field(max_length=200)]


class AccountFields(Strict):
    """Account attributes. Every field is optional: an update carries only what changed."""

    name: Text | None = None
    industry: Text | None = None
    owner: Text | None = None
    plan: Plan | None = None
    licensed_seats: LicensedSeats | None = None
    features_available: FeaturesAvailable | None = None
    renewal_date: SaneDate | None = None
    arr: Money | None = None
    attributes: Attributes | None = Field(
        None, description="named string or number facts (plan, tenure_months...); null removes"
    )


class UsageReport(Strict):
    """Usage of one period (a week, a month) ending on ``period_end``. A later report for the
    same period replaces the earlier one."""

    period_end: SaneDate
    active_seats: Seats
    logins: Count
    licensed_seats: LicensedSeats | None = None
    # How many features were used in the period, or their names (counted once each).
    features_used: FeatureCount | Annotated[list[Feature], Field(max_length=10_000)] | None = None
    features_available: FeaturesAvailable | None = None
    plan: Plan | None = None

    @property
    def features_used_count(self) -> int | None:
        if isinstance(self.features_used, list):
            return len(set(self.features_used))
        return self.features_used

    @model_validator(mode="after")
    def _consistent(self) -> UsageReport:
        used = self.features_used_count
        available = self.features_available
        if used is not None and available is not None and used > available:
            raise ValueError("features_used cannot exceed features_available")
        return self


class TicketOpened(Strict):
    """A support ticket opened (or, for a ticket already open, its new severity/escalation)."""

    ticket_id: Id
    severity: TicketSeverity
    escalated: bool = False


class TicketClosed(Strict):
    ticket_id: Id


class PaymentFailed(Strict):
    invoice_id: Id
    amount: Money
    days_overdue: Annotated[int, Field(ge=0, le=36_500)] = 0


class PaymentSucceeded(Strict):
    invoice_id: Id


class NpsSubmitted(Strict):
    """A survey answer: likelihood to recommend (0-10) and optionally CSAT (1-5)."""

    score: Annotated[int, Field(ge=0, le=10)]
    csat: Annotated[float, Field(ge=1, le=5)] | None = None


class RenewalUpdated(Strict):
    """The upcoming renewal as it stands now; only the given fields change."""

    renewal_date: SaneDate | None = None
    plan: Plan | None = None
    seats: LicensedSeats | None = None
    arr: Money | None = None
    downgrade_requested: bool | None = None


class Churned(Strict):
    """The account left (cancelled, did not renew)."""

    reason: Text | None = None


class Renewed(Strict):
    """The account renewed; optionally its next renewal date and new ARR."""

    renewal_date: SaneDate | None = None
    arr: Money | None = None


class AccountCreated(Envelope):
    type: Literal["account.created"]
    data: AccountFields


class AccountUpdated(Envelope):
    type: Literal["account.updated"]
    data: AccountFields


class AccountUsageReported(Envelope):
    type: Literal["account.usage_reported"]
    data: UsageReport


class AccountTicketOpened(Envelope):
    type: Literal["account.ticket_opened"]
    data: TicketOpened


class AccountTicketClosed(Envelope):
    type: Literal["account.ticket_closed"]
    data: TicketClosed


class AccountPaymentFailed(Envelope):
    type: Literal["account.payment_failed"]
    data: PaymentFailed


class AccountPaymentSucceeded(Envelope):
    type: Literal["account.payment_succeeded"]
    data: PaymentSucceeded


class AccountNpsSubmitted(Envelope):
    type: Literal["account.nps_submitted"]
    data: NpsSubmitted


class AccountRenewalUpdated(Envelope):
    type: Literal["account.renewal_updated"]
    data: RenewalUpdated


class AccountChurned(Envelope):
    type: Literal["account.churned"]
    data: Churned = Churned()


class AccountRenewed(Envelope):
    type: Literal["account.renewed"]
    data: Renewed = Renewed()


AccountEvent = Annotated[
    AccountCreated
    | AccountUpdated
    | AccountUsageReported
    | AccountTicketOpened
    | AccountTicketClosed
    | AccountPaymentFailed
    | AccountPaymentSucceeded
    | AccountNpsSubmitted
    | AccountRenewalUpdated
    | AccountChurned
    | AccountRenewed,
    Field(discriminator="type"),
]
AccountEventAdapter: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
ACCOUNT_EVENT_TYPES = (
    "account.created",
    "account.updated",
    "account.usage_reported",
    "account.ticket_opened",
    "account.ticket_closed",
    "account.payment_failed",
    "account.payment_succeeded",
    "account.nps_submitted",
    "account.renewal_updated",
    "account.churned",
    "account.renewed",
)
