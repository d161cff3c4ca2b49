"""Account churn risk: ``score_churn(account, framework, as_of=None)``, 0-100.

Four areas, each a risk from 0 to 100 (parameters: ``[defaults.churn]`` + vertical overrides):

* usage     = the highest of the available usage signals:
              login trend and active-seat trend: 100 when the recent half of the periods has
              no usage at all, else min(100, 100 * decline / full_risk_decline), decline = drop
              of the recent half's mean against the earlier half's (0 when usage grew);
              utilisation: 100 * (healthy_utilisation - u) / healthy_utilisation (0 at or above
              healthy_utilisation), u = latest active seats / licensed seats.
              No usage data at all: missing_data_risk.
* support   = min(100, min(max_ticket_points, ticket_points * open_tickets)
                   + severity_points[max_ticket_severity]
                   + min(max_escalation_points, escalation_points * escalations))
* financial = min(100, failed_payment_points * failed_payments
                   + min(max_overdue_points, overdue_day_points * days_overdue)
                   + downgrade_points * downgrade_requests)
* sentiment = mean of the available of: NPS risk = 100 * (10 - nps) / 10, where ``nps`` is the
              account's 0-10 likelihood-to-recommend answer (9-10 promoter, 7-8 passive, 0-6
              detractor); CSAT risk = 100 * (5 - csat) / 4 on a 1-5 CSAT. Neither:
              missing_data_risk.

Then::

    weighted = sum(weight[area] * risk[area])
    base     = max(weighted, worst_area_floor * max(risk))   # one very bad area is enough
    proximity = 100 when the renewal is due or past, 100 * (horizon - days) / horizon within
                the horizon, 0 beyond it or when unknown
    multiplier = 1 + renewal_max_amplification * proximity / 100
    score    = round_half_up(min(100, base * multiplier))

Levels: critical >= critical_min, high >= high_min, medium >= medium_min, else low. Every area
and signal whose risk reaches ``driver_min_risk`` is reported as a driver sentence, biggest first.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from ._common import Model, Result, clamp, plural, round_half_up, trend
from .framework import ChurnParams, Framework

__all__ = ["ChurnArea", "ChurnBreakdown", "ChurnInput", "ChurnResult", "score_churn"]

Severity = Literal["none", "low", "medium", "high", "critical"]
ChurnLevel = Literal["low", "medium", "high", "critical"]


class ChurnInput(Model):
    account_id: str | None = Field(None, max_length=200, description="For the caller's use.")
    industry: str | None = Field(None, max_length=300, description="Industry (vertical).")
    logins: list[float] = Field(
        default_factory=list,
        max_length=1000,
        description="Logins per period, oldest first (e.g. weekly or monthly counts).",
    )
    active_seats: list[float] = Field(
        default_factory=list, max_length=1000, description="Active seats per period, oldest first."
    )
    licensed_seats: int | None = Field(None, ge=1, le=10_000_000, description="Seats paid for.")
    open_tickets: int = Field(0, ge=0, le=1_000_000, description="Open support tickets.")
    max_ticket_severity: Severity = Field("none", description="Worst open ticket's severity.")
    escalations: int = Field(0, ge=0, le=1_000_000, description="Escalated tickets (recent).")
    failed_payments: int = Field(0, ge=0, le=10_000, description="Failed payments (recent).")
    days_overdue: int = Field(0, ge=0, le=36_500, description="Days the oldest invoice is due.")
    downgrade_requests: int = Field(0, ge=0, le=10_000, description="Downgrade requests.")
    nps: int | None = Field(
        None, ge=0, le=10, description="Likelihood to recommend, 0-10 (the NPS survey answer)."
    )
    csat: float | None = Field(None, ge=1, le=5, description="Customer satisfaction, 1-5.")
    days_to_renewal: int | None = Field(
        None, ge=-36_500, le=36_500, description="Days until renewal (negative: past)."
    )
    renewal_date: date | None = Field(None, description="Renewal date; needs as_of.")
    as_of: date | None = Field(None, description="The day the account is scored.")

    @model_validator(mode="after")
    def _renewal(self) -> ChurnInput:
        if self.renewal_date is not None and self.days_to_renewal is not None:
            raise ValueError("give either renewal_date or days_to_renewal, not both")
        if any(x < 0 for x in self.logins) or any(x < 0 for x in self.active_seats):
            raise ValueError("usage counts must not be negative")
        return self


class ChurnArea(Model):
    risk: float = Field(description="0-100.")
    weight: float
    contribution: float = Field(description="weight * risk.")
    has_data: bool


class ChurnBreakdown(Model):
    usage: ChurnArea
    support: ChurnArea
    financial: ChurnArea
    sentiment: ChurnArea
    weighted: float = Field(description="Sum of the areas' contributions.")
    worst_area_floor: float = Field(description="worst_area_floor * the highest area risk.")
    base: float = Field(description="max(weighted, worst_area_floor).")
    days_to_renewal: int | None
    renewal_proximity: float = Field(description="0-100.")
    renewal_multiplier: float
    unrounded_score: float = Field(description="min(100, base * renewal_multiplier).")


class ChurnResult(Result):
    score: int = Field(description="Churn risk 0-100.")
    level: ChurnLevel
    drivers: tuple[str, ...]
    breakdown: ChurnBreakdown
    framework_version: str


def _window(n: int) -> str:
    if n == 1:
        return "last period against the one before"
    return f"last {n} periods against the {n} before"


def _usage(a: ChurnInput, cp: ChurnParams) -> tuple[float | None, list[tuple[float, str]]]:
    """Usage risk (None without data) and its signals."""
    signals: list[tuple[float, str]] = []
    for series, what in ((a.logins, "Logins"), (a.active_seats, "Active seats")):
        tr = trend(series)
        if tr is None:
            continue
        if tr.recent_mean == 0:
            noun = "logins" if what == "Logins" else "active seats"
            signals.append((100.0, f"No {noun} in the last {plural(tr.periods, 'period')}"))
        elif tr.change is not None and tr.change < 0:
            decline = -tr.change
            risk = min(100.0, 100.0 * decline / cp.usage.full_risk_decline)
            signals.append(
                (
                    risk,
                    f"{what} down {decline:.0%} ({_window(tr.periods)})",
                )
            )
        else:
            signals.append((0.0, f"{what} steady or growing"))
    if a.licensed_seats is not None and a.active_seats:
        u = a.active_seats[-1] / a.licensed_seats
        healthy = cp.usage.healthy_utilisation
        risk = clamp(100.0 * (healthy - u) / healthy)
        signals.append((risk, f"Only {u:.0%} of licensed seats active"))
    if not signals:
        return None, []
    return max(r for r, _ in signals), signals


def _support(a: ChurnInput, cp: ChurnParams) -> tuple[float, list[tuple[float, str]]]:
    sp = cp.support
    tickets = min(sp.max_ticket_points, sp.ticket_points * a.open_tickets)
    severity = getattr(sp.severity_points, a.max_ticket_severity)
    escalations = min(sp.max_escalation_points, sp.escalation_points * a.escalations)
    signals = [
        (tickets, plural(a.open_tickets, "open support ticket")),
        (severity, f"Worst open ticket is {a.max_ticket_severity} severity"),
        (escalations, plural(a.escalations, "escalated ticket")),
    ]
    return min(100.0, tickets + severity + escalations), signals


def _financial(a: ChurnInput, cp: ChurnParams) -> tuple[float, list[tuple[float, str]]]:
    fp = cp.financial
    failed = fp.failed_payment_points * a.failed_payments
    overdue = min(fp.max_overdue_points, fp.overdue_day_points * a.days_overdue)
    downgrades = fp.downgrade_points * a.downgrade_requests
    signals = [
        (failed, plural(a.failed_payments, "failed payment")),
        (overdue, f"Invoice {plural(a.days_overdue, 'day')} overdue"),
        (downgrades, plural(a.downgrade_requests, "downgrade request")),
    ]
    return min(100.0, failed + overdue + downgrades), signals


def _sentiment(a: ChurnInput) -> tuple[float | None, list[tuple[float, str]]]:
    signals: list[tuple[float, str]] = []
    if a.nps is not None:
        kind = "Detractor" if a.nps <= 6 else "Passive" if a.nps <= 8 else "Promoter"
        signals.append((100.0 * (10 - a.nps) / 10, f"{kind}: would recommend {a.nps}/10"))
    if a.csat is not None:
        signals.append((100.0 * (5.0 - a.csat) / 4.0, f"CSAT {a.csat:.1f}/5"))
    if not signals:
        return None, []
    return sum(r for r, _ in signals) / len(signals), signals


def score_churn(
    account: ChurnInput, framework: Framework, as_of: date | None = None
) -> ChurnResult:
    """Churn risk of an account (formula: module docstring). ``as_of`` (or the input's
    ``as_of``) is needed only to turn ``renewal_date`` into days; never the clock."""
    resolved = framework.for_industry(account.industry)
    cp = resolved.params.churn
    w = cp.weights
    driver_min = cp.driver_min_risk

    usage, usage_signals = _usage(account, cp)
    support, support_signals = _support(account, cp)
    financial, financial_signals = _financial(account, cp)
    sentiment, sentiment_signals = _sentiment(account)

    # (contribution, sentence) for every driver; the contribution ranks them.
    drivers: list[tuple[float, str]] = []
    areas: dict[str, ChurnArea] = {}
    for name, risk, weight, signals, missing in (
        ("usage", usage, w.usage, usage_signals, "No usage data"),
        ("support", support, w.support, support_signals, ""),
        ("financial", financial, w.financial, financial_signals, ""),
        ("sentiment", sentiment, w.sentiment, sentiment_signals, "No NPS or CSAT answer"),
    ):
        has_data = risk is not None
        value = cp.missing_data_risk if risk is None else risk
        areas[name] = ChurnArea(
            risk=value, weight=weight, contribution=weight * value, has_data=has_data
        )
        if not has_data and value >= driver_min:
            drivers.append((weight * value, missing))
        drivers.extend((weight * r, text) for r, text in signals if r >= driver_min and r > 0)

    weighted = sum(area.contribution for area in areas.values())
    floor = cp.worst_area_floor * max(area.risk for area in areas.values())
    base = max(weighted, floor)

    days = account.days_to_renewal
    if account.renewal_date is not None:
        day = as_of or account.as_of
        if day is None:
            raise ValueError("renewal_date needs as_of (the day the account is scored)")
        days = (account.renewal_date - day).days
    horizon = cp.renewal.horizon_days
    proximity = 0.0 if days is None else clamp(100.0 * (horizon - days) / horizon)
    multiplier = 1.0 + cp.renewal.renewal_max_amplification * proximity / 100.0
    unrounded = min(100.0, base * multiplier)
    score = round_half_up(unrounded)
    if days is not None and proximity >= driver_min:
        text = (
            f"Renewal in {plural(days, 'day')}"
            if days > 0
            else "Renewal due today"
            if days == 0
            else f"Renewal date passed {plural(-days, 'day')} ago"
        )
        drivers.append((base * (multiplier - 1.0), text))

    lv = cp.levels
    level: ChurnLevel = (
        "critical"
        if score >= lv.critical_min
        else "high"
        if score >= lv.high_min
        else "medium"
        if score >= lv.medium_min
        else "low"
    )
    drivers.sort(key=lambda d: d[0], reverse=True)
    return ChurnResult(
        score=score,
        level=level,
        drivers=tuple(text for _, text in drivers),
        breakdown=ChurnBreakdown(
            **areas,
            weighted=weighted,
            worst_area_floor=floor,
            base=base,
            days_to_renewal=days,
            renewal_proximity=proximity,
            renewal_multiplier=multiplier,
            unrounded_score=unrounded,
        ),
        framework_version=resolved.version,
    )
