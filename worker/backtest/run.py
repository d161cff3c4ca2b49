"""``revintel backtest``: the export replayed cut by cut, each model trained only on what was
known before its cut, scored against what happened after it, beside the baselines.

At each cut (a day of each month, 00:00 UTC) the deals are as the worker's merge left them
after the events before the cut (:class:`~worker.backtest.replay.Replay`), and:

Close probability
    The deals open at the cut that closed later are scored by the learned model (trained on
    the month-start snapshots before the cut and the closes before it) and, for comparison,
    by the framework heuristic (``worker.engine.score_deal`` as of the cut). Until
    ``min_won`` won and ``min_lost`` lost deals exist, the model is not trained: the heuristic
    is used with its stage base rates re-estimated from the outcomes that do exist.

Forecast of the cut's month (the cut to the month's end)
    ``worker.forecast.learned.learned_months``, as the worker's forecast runs use it: the open
    deals' values (amount x the won-over-amount ratio of earlier wins) through the model's
    P(won this month), new business, and the seasonal forecast, combined by the errors of the
    earlier cuts (this object carries them from cut to cut, as the worker's stored runs do).
    The model's errors count only at cuts where it was trained (not the fallback's).

Baselines, in the same run: last month, the trailing 3-month mean, the same month last
quarter (all scaled to the part of the month after the cut), the stage-weighted pipeline
(amount x the framework's stage base rate over deals expected to close in the month) and the
forecast the worker published before this model (``worker.forecast.runs.compute_months`` with
the heuristic probabilities: month 0's P50 plus the overdue line's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from worker.backtest.replay import Replay
from worker.engine import Framework, default_framework
from worker.engine.deal import DealFacts, score_deal
from worker.forecast.learned import OpenDeals, PastErrors, WonHistory, learned_months
from worker.forecast.maths import is_overdue
from worker.forecast.runs import compute_months
from worker.models import metrics
from worker.models.deal import (
    ModelKind,
    Snapshot,
    enough_outcomes,
    fit_deal_model,
    stage_win_rates,
    training_set,
)
from worker.models.deal_features import ClosedDeal, build_history, month_bounds

BASELINES = ("last_month", "trailing_3", "same_month_last_quarter", "stage_weighted", "before")


@dataclass(frozen=True)
class CutResult:
    cut: datetime
    model: str  # "learned" or "heuristic (re-estimated base rates)"
    forecast: float
    p10: float
    p90: float
    pipeline: float
    new_business: float
    seasonal: float | None
    weight: float  # of the model in the combination
    actual: float
    baselines: dict[str, float | None]
    close_model: np.ndarray = field(repr=False)
    close_heuristic: np.ndarray = field(repr=False)
    close_won: np.ndarray = field(repr=False)
    seconds: float = 0.0


@dataclass(frozen=True)
class BacktestReport:
    cuts: list[CutResult]
    scored_from: date  # forecast figures over cuts on or after this month
    close_model: metrics.ProbabilityScores | None
    close_heuristic: metrics.ProbabilityScores | None
    forecast_mape: float | None
    forecast_bias: float | None
    coverage: float | None
    baseline_mape: dict[str, float | None]


def _month(d: datetime | date) -> int:
    return d.year * 12 + d.month - 1


def _start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


class _Actuals:
    """Won value by close instant, and the part of it from deals created after a moment."""

    def __init__(self, replay: Replay, outcomes: dict[str, ClosedDeal]) -> None:
        self.wins = sorted(
            (o.closed_at, replay.won_value(o.deal_id), replay.created_at(o.deal_id))
            for o in outcomes.values()
            if o.won
        )

    def won(self, start: datetime, end: datetime, created_from: datetime | None = None) -> float:
        return sum(
            v
            for at, v, created in self.wins
            if start <= at < end and (created_from is None or created >= created_from)
        )

    def first_close(self) -> datetime | None:
        return self.wins[0][0] if self.wins else None


def _heuristic(deals: Sequence[Any], at: datetime, fw: Framework) -> list[Any]:
    return [score_deal(DealFacts.from_record(d), at, fw) for d in deals]


def _baselines(
    actuals: _Actuals, open_deals: Sequence[Any], scores: Sequence[Any], cut: datetime
) -> dict[str, float | None]:
    c = _month(cut)
    start, end = _start(c), _start(c + 1)
    share = (end - cut) / (end - start)

    def month(i: int) -> float:
        return actuals.won(_start(i), _start(i + 1))

    first = actuals.first_close()
    known = [i for i in range(c - 3, c) if first is not None and _start(i + 1) > first]
    weighted = sum(
        float(d.amount or 0) * s.probability.breakdown.stage_base_rate / 100.0
        for d, s in zip(open_deals, scores, strict=True)
        if d.expected_close_date is not None and _month(d.expected_close_date) == c
    )
    rows = [
        {
            "amount": d.amount,
            "close_probability": s.probability.probability,
            "expected_close_date": d.expected_close_date,
        }
        for d, s in zip(open_deals, scores, strict=True)
    ]
    months, _, overdue = compute_months(rows, cut.date(), 1)
    before = months[0].p50 + (overdue.p50 if overdue else 0.0)
    return {
        "last_month": month(c - 1) * share if known and known[-1] == c - 1 else None,
        "trailing_3": sum(month(i) for i in known) / 3 * share if len(known) == 3 else None,
        "same_month_last_quarter": month(c - 3) * share if c - 3 in known else None,
        "stage_weighted": weighted,
        "before": before,
    }


def _fallback(
    deals: Sequence[Any], scores: Sequence[Any], rates: dict[str, float], base: float, cut: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Before there are enough outcomes: the heuristic's probability with its stage base rate
    replaced by the stage's observed win rate; no timing model yet, so the deals expected to
    close by the cut's month count in it at that probability."""
    close_p = np.array(
        [
            s.probability.probability / 100.0
            - s.probability.breakdown.stage_base_rate / 100.0
            + rates.get(str(d.stage), base)
            for d, s in zip(deals, scores, strict=True)
        ]
    ).clip(0.0, 1.0)
    due = np.array(
        [
            d.expected_close_date is not None and _month(d.expected_close_date) <= _month(cut)
            for d in deals
        ],
        dtype=bool,
    )
    return close_p, np.where(due, close_p, 0.0)


@dataclass
class Backtest:
    """The state carried from cut to cut: earlier cuts' errors, for the combination."""

    replay: Replay
    framework: Framework
    kind: ModelKind = "boosting"
    min_won: int = 200
    min_lost: int = 200
    model_errors: list[float] = field(default_factory=list)
    seasonal_errors: list[float] = field(default_factory=list)
    combined_errors: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outcomes = self.replay.outcomes()
        self.actuals = _Actuals(self.replay, self.outcomes)
        self.snapshots: dict[datetime, Snapshot] = {}

    def snapshot(self, at: datetime) -> Snapshot:
        if at not in self.snapshots:
            self.snapshots[at] = Snapshot(at, self.replay.open_at(at))
        return self.snapshots[at]

    def run_cut(self, cut: datetime) -> CutResult:
        started = datetime.now(UTC)  # bookkeeping only: how long the cut took
        first = self.actuals.first_close()
        # history begins with the first outcome: months before it teach "nothing ever closes"
        begin = _month(first) if first else _month(cut)
        snaps = [self.snapshot(_start(i)) for i in range(begin, _month(cut) + 1) if _start(i) < cut]
        everyone = self.replay.at(cut)
        history = build_history(
            self.outcomes.values(), [(d.industry, float(d.amount or 0)) for d in everyone], cut
        )
        data = training_set(snaps, self.outcomes, history, cut)
        open_now = self.snapshot(cut).deals
        scores = _heuristic(open_now, cut, self.framework)
        heuristic_p = np.array([s.probability.probability / 100.0 for s in scores])
        end = _start(_month(cut) + 1)
        ratio = self._won_ratio(cut)
        values = np.array([float(d.amount or 0) * ratio for d in open_now])
        if len(data.labels) and enough_outcomes(data, self.min_won, self.min_lost):
            predictions = fit_deal_model(data, history, kind=self.kind).predict(open_now, cut)
            close_p, month_p = predictions.close_probability, predictions.win[:, 0]
            label = "learned"
        else:
            rates = stage_win_rates(snaps, self.outcomes, cut, history.base_rate)
            close_p, month_p = _fallback(open_now, scores, rates, history.base_rate, cut)
            label = "heuristic (re-estimated base rates)"
        overdue = [is_overdue(d.expected_close_date, cut.date()) for d in open_now]
        open_deals = OpenDeals(
            values, month_p.reshape(-1, 1), np.zeros((len(values), 1)), np.array(overdue, bool)
        )
        (month,) = learned_months(
            as_of=cut,
            deals=open_deals,
            history=self._won_history(cut, begin),
            errors=PastErrors(self.model_errors, self.seasonal_errors, self.combined_errors),
            months=1,
        )
        baselines = _baselines(self.actuals, open_now, scores, cut)
        actual = self.actuals.won(cut, end)
        self._record(
            month.model_point if label == "learned" else None,
            month.seasonal,
            month.forecast.p50,
            actual,
        )
        closed = np.array([d.deal_id in self.outcomes for d in open_now], dtype=bool)
        won = np.array(
            [self.outcomes[i].won for i in (d.deal_id for d in open_now) if i in self.outcomes]
        )
        parts = month.forecast.parts
        assert parts is not None
        return CutResult(
            cut=cut,
            model=label,
            forecast=month.forecast.p50,
            p10=month.forecast.p10,
            p90=month.forecast.p90,
            pipeline=parts.open_pipeline + parts.overdue,
            new_business=parts.new_business,
            seasonal=month.seasonal,
            weight=parts.model_weight,
            actual=actual,
            baselines=baselines,
            close_model=close_p[closed],
            close_heuristic=heuristic_p[closed],
            close_won=won.astype(float),
            seconds=(datetime.now(UTC) - started).total_seconds(),
        )

    def _won_ratio(self, cut: datetime) -> float:
        """Won value over the amount the deal carried while open, over wins before ``cut``."""
        wins = [o for o in self.outcomes.values() if o.won and o.closed_at < cut and o.amount]
        amount = sum(o.amount or 0.0 for o in wins)
        return sum(self.replay.won_value(o.deal_id) for o in wins) / amount if amount else 1.0

    def _won_history(self, cut: datetime, begin: int) -> WonHistory:
        """Won value of the complete months before the cut's, by close and creation month."""
        sums: dict[tuple[int, int], float] = {}
        for at, value, created in self.actuals.wins:
            if at < _start(_month(cut)):
                key = (_month(at), _month(created))
                sums[key] = sums.get(key, 0.0) + value
        return WonHistory(sums, begin)

    def _record(
        self, model: float | None, seasonal: float | None, point: float, actual: float
    ) -> None:
        """Remember this cut's errors (after its forecast: the next cut sees them). Each list
        holds one forecaster's errors only: the learned model's (not the fallback's), and the
        combination's where there was a seasonal forecast to combine with."""
        if actual <= 0:
            return
        if model is not None:
            self.model_errors.append((model - actual) / actual)
        if seasonal is not None:
            self.seasonal_errors.append((seasonal - actual) / actual)
            self.combined_errors.append((point - actual) / actual)


def cuts_between(first: date, last: date, day: int = 1) -> list[datetime]:
    """The cut instants: ``day`` of each month from ``first``'s month to ``last``'s."""
    out = []
    for i in range(_month(first), _month(last) + 1):
        start, _ = month_bounds(date(i // 12, i % 12 + 1, 1), 0)
        out.append(datetime(start.year, start.month, day, tzinfo=UTC))
    return out


def run_backtest(
    replay: Replay,
    cuts: Sequence[datetime],
    *,
    score_from: date,
    framework: Framework | None = None,
    kind: ModelKind = "boosting",
) -> BacktestReport:
    """Every cut in order (each sees the errors of the cuts before it), then the figures:
    close probability over all cuts, forecast figures over cuts from ``score_from``."""
    bt = Backtest(replay, framework or default_framework(), kind)
    results = [bt.run_cut(c) for c in cuts]
    scored = [r for r in results if r.cut.date() >= score_from]

    def probs(attr: str) -> metrics.ProbabilityScores | None:
        p = np.concatenate([getattr(r, attr) for r in results]) if results else np.array([])
        y = np.concatenate([r.close_won for r in results]) if results else np.array([])
        return metrics.score_probabilities(p, y) if len(y) else None

    actual = [r.actual for r in scored]
    baseline_mape: dict[str, float | None] = {}
    for name in BASELINES:
        pairs = [(r.baselines[name], r.actual) for r in scored if r.baselines[name] is not None]
        baseline_mape[name] = (
            metrics.mape([f for f, _ in pairs], [a for _, a in pairs])
            if len(pairs) == len(scored) and pairs
            else None
        )
    return BacktestReport(
        cuts=results,
        scored_from=score_from,
        close_model=probs("close_model"),
        close_heuristic=probs("close_heuristic"),
        forecast_mape=metrics.mape([r.forecast for r in scored], actual),
        forecast_bias=metrics.bias([r.forecast for r in scored], actual),
        coverage=metrics.coverage([r.p10 for r in scored], [r.p90 for r in scored], actual),
        baseline_mape=baseline_mape,
    )
