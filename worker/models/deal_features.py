"""Pure: what is known about an open deal at a moment, as numbers a model can learn from.

Everything here is computed from the deal's state as it was at ``now`` (a ``DealState``, a
``deal_snapshots`` row or anything with the same attribute names) and from outcomes closed
before the training cut, never from the deal's own later history: a training row must look
exactly like a row scored live.

Base features (one row per deal and moment):
    one-hot open stage; days in stage, deal age, days since the last activity (since creation
    when none), days overdue (past the expected close date, else 0), days until the expected
    close date (0 when overdue or unknown), close-date pushes; log of the amount over the
    typical (median) amount of the deal's industry; lead score (-1 unknown), interactions,
    objections handled, champion, budget, decision maker, competitors; smoothed historical win
    rates of the deal's owner, account (company) and industry, and how many closed deals each
    rate rests on (log1p).

Horizon features (one row per deal, moment and forecast month ``k`` = 0, 1, ...):
    k; the share of month ``k`` still ahead of ``now`` (1 for later months); the target month's
    place in its quarter (0, 1, 2): sales close at quarter ends, so the calendar is part of the
    signal. (Day counts such as a month's length are left out on purpose: a tree model learns
    "30-day months are slow" from one April.)

Smoothed win rate of a group = (wins + m * base) / (closed + m), ``m`` = ``SMOOTHING`` (10
closed deals' worth of the base rate), so a group with few outcomes sits near the base rate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from schemas.deal_events import OPEN_STAGES, DealStage

SMOOTHING = 10.0
GROUPS = ("owner", "company", "industry")
STAGE_FEATURES = tuple(f"stage_{s.value}" for s in OPEN_STAGES)
BASE_FEATURES = (
    *STAGE_FEATURES,
    "days_in_stage",
    "age_days",
    "days_since_activity",
    "days_overdue",
    "days_to_close_date",
    "close_date_pushes",
    "log_amount_vs_typical",
    "lead_score",
    "interactions",
    "objections_handled",
    "has_champion",
    "budget_confirmed",
    "decision_maker_engaged",
    "competitors",
    *(f"{g}_win_rate" for g in GROUPS),
    *(f"{g}_closed_log" for g in GROUPS),
)
HORIZON_FEATURES = ("month_ahead", "window_share", "month_of_quarter")
FEATURES = (*BASE_FEATURES, *HORIZON_FEATURES)
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ClosedDeal:
    """An outcome the models learn from: who, when, won or lost, for how much."""

    deal_id: str
    owner: str | None
    company: str | None
    industry: str | None
    won: bool
    closed_at: datetime
    amount: float | None


@dataclass(frozen=True)
class History:
    """What the closed deals before a cut say: win counts per group, the base rate, the
    typical amount per industry, and won value over the amount the deal carried when open."""

    base_rate: float
    closed: dict[str, Counter[str]] = field(default_factory=dict)
    won: dict[str, Counter[str]] = field(default_factory=dict)
    typical_amount: dict[str, float] = field(default_factory=dict)
    overall_amount: float = 1.0

    def rate(self, group: str, value: str | None) -> tuple[float, int]:
        """The smoothed win rate of ``group`` = ``value`` and its number of closed deals."""
        if value is None:
            return self.base_rate, 0
        n = self.closed.get(group, Counter())[value]
        w = self.won.get(group, Counter())[value]
        return (w + SMOOTHING * self.base_rate) / (n + SMOOTHING), n

    def typical(self, industry: str | None) -> float:
        return self.typical_amount.get(industry or "", self.overall_amount)


def build_history(
    closed: Iterable[ClosedDeal], amounts: Iterable[tuple[str | None, float]], cut: datetime
) -> History:
    """The :class:`History` of the deals closed before ``cut``; ``amounts`` are (industry,
    amount) of deals known before the cut (for the typical amount per industry)."""
    before = [c for c in closed if c.closed_at < cut]
    wins = sum(c.won for c in before)
    base = (wins + 1.0) / (len(before) + 2.0)  # Laplace: defined before the first close
    closed_n: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    won_n: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    for c in before:
        for g in GROUPS:
            value = getattr(c, g)
            if value is not None:
                closed_n[g][value] += 1
                won_n[g][value] += c.won
    by_industry: dict[str, list[float]] = {}
    every: list[float] = []
    for industry, amount in amounts:
        if amount and amount > 0:
            by_industry.setdefault(industry or "", []).append(amount)
            every.append(amount)
    typical = {k: float(np.median(v)) for k, v in by_industry.items()}
    overall = float(np.median(every)) if every else 1.0
    return History(base, closed_n, won_n, typical, overall)


def _days(later: datetime | date, earlier: datetime | date | None) -> float:
    if earlier is None:
        return 0.0
    if isinstance(later, datetime) and isinstance(earlier, datetime):
        return max(0.0, (later - earlier).total_seconds() / _DAY)
    return float((_as_date(later) - _as_date(earlier)).days)


def _as_date(d: datetime | date) -> date:
    return d.date() if isinstance(d, datetime) else d


def base_row(deal: Any, now: datetime, history: History) -> list[float]:
    """The base features of one open deal at ``now`` (see the module docstring)."""
    stage = DealStage(deal.stage)
    activity = deal.last_activity_at or deal.created_at
    to_close = _days(deal.expected_close_date, _as_date(now)) if deal.expected_close_date else 0.0
    amount = float(deal.amount) if deal.amount is not None else 0.0
    competitors = deal.competitors
    if not isinstance(competitors, int):
        competitors = len(set(competitors))
    rates = [history.rate(g, getattr(deal, g)) for g in GROUPS]
    return [
        *(float(stage == s) for s in OPEN_STAGES),
        _days(now, deal.stage_entered_at),
        _days(now, deal.created_at),
        _days(now, activity),
        max(0.0, -to_close),
        max(0.0, to_close),
        float(deal.close_date_pushes),
        math.log(max(amount, 1.0) / max(history.typical(deal.industry), 1.0)),
        float(deal.lead_score) if deal.lead_score is not None else -1.0,
        float(deal.interactions),
        float(deal.objections_handled),
        float(deal.has_champion),
        float(deal.budget_confirmed),
        float(deal.decision_maker_engaged),
        float(competitors),
        *(r for r, _ in rates),
        *(math.log1p(n) for _, n in rates),
    ]


def month_bounds(day: date, k: int) -> tuple[date, date]:
    """The first day of the month ``k`` months after ``day``'s month, and of the month after."""
    index = day.year * 12 + day.month - 1 + k
    start = date(index // 12, index % 12 + 1, 1)
    nxt = index + 1
    return start, date(nxt // 12, nxt % 12 + 1, 1)


def horizon_row(now: datetime, k: int) -> list[float]:
    """The horizon features of forecast month ``k`` seen from ``now``."""
    today = _as_date(now)
    start, end = month_bounds(today, k)
    window_start = max(start, today)
    return [
        float(k),
        (end - window_start).days / (end - start).days,
        float((start.month - 1) % 3),
    ]


def window_of(now: datetime, k: int) -> tuple[datetime, datetime]:
    """The instants month ``k``'s window covers: [max(month start, now), next month start)."""
    start, end = month_bounds(_as_date(now), k)
    tz = now.tzinfo
    begin = datetime(start.year, start.month, start.day, tzinfo=tz)
    finish = datetime(end.year, end.month, end.day, tzinfo=tz)
    return max(begin, now), finish


def matrix(
    deals: Sequence[Any], now: datetime, history: History, months: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows for every deal and month 0 .. ``months`` - 1: an array of shape
    (len(deals) * months, len(FEATURES)), deal-major, and the base rows alone."""
    base = np.array([base_row(d, now, history) for d in deals], dtype=np.float64)
    base = base.reshape(len(deals), len(BASE_FEATURES))
    horizons = np.array([horizon_row(now, k) for k in range(months)], dtype=np.float64)
    rows = np.concatenate(
        [np.repeat(base, months, axis=0), np.tile(horizons, (len(deals), 1))], axis=1
    )
    return rows, base
