"""Pure: the forecast of the months ahead with the learned deal model, new business and the
seasonal forecast. One implementation for the worker's forecast runs and for
``revintel backtest``. No I/O, no clock: ``as_of`` is an argument.

For forecast month k (0 = from ``as_of`` to the end of its month):

* open pipeline: sum over the open deals of value x P(won in month k) (the deal model's
  timing, which knows how late a deal already is), split into the deals not yet due and the
  ``overdue`` ones (past their expected close date at ``as_of``);
* new business: value won by deals not created yet, forecast from its own history
  (:mod:`worker.models.new_business`): for month k, the value won in each past month m by deals
  created from month m - k on; month 0's share is the part of the month after ``as_of``;
* seasonal: the won value of the same month of the latest complete quarter (month k - 3, or
  k - 6 for k >= 3), scaled like new business;
* the model's point (open pipeline + new business) and the seasonal one are combined with
  weights inversely proportional to their mean squared relative error at earlier forecasts
  (``PastErrors``; equal until each has two): both errors were known when forecasting;
* P10/P90 = P50 -/+ 1.2816 sd, sd = s x P50 with s the root-mean-square relative error of the
  combination at earlier forecasts (it holds every source of error); until two exist,
  ``PRIOR_RELATIVE_SD`` x P50 combined with the open pipeline's Bernoulli spread. The errors
  are month 0's (forecasts one month ahead are the ones the history can score soonest) and
  serve every month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from schemas.forecasts import ForecastMonth, ForecastParts
from worker.models.new_business import forecast_new_business

Z90 = 1.2815515655446004
PRIOR_RELATIVE_SD = 0.15
SEASON = 3


@dataclass(frozen=True, slots=True)
class PastErrors:
    """Relative errors ((forecast - actual) / actual) of earlier month-0 forecasts, oldest
    first: of the model's own point, of the seasonal forecast, of their combination."""

    model: Sequence[float] = ()
    seasonal: Sequence[float] = ()
    combined: Sequence[float] = ()

    def model_weight(self) -> float:
        if len(self.model) < 2 or len(self.seasonal) < 2:
            return 0.5
        m = float(np.mean(np.square(self.model)))
        s = float(np.mean(np.square(self.seasonal)))
        if m <= 0 or s <= 0:
            return 0.5
        return (1 / m) / (1 / m + 1 / s)

    def relative_sd(self) -> float | None:
        if len(self.combined) < 2:
            return None
        return math.sqrt(float(np.mean(np.square(self.combined))))


@dataclass(frozen=True, slots=True)
class WonHistory:
    """Won value of complete past months by (close month, creation month), month indexes
    (year * 12 + month - 1); ``first_month`` is the first month with an outcome."""

    by_close_and_creation: Mapping[tuple[int, int], float]
    first_month: int

    def won(self, month: int) -> float:
        return sum(v for (m, _), v in self.by_close_and_creation.items() if m == month)

    def new_business(self, month: int, lead: int) -> float:
        """Won in ``month`` by deals created from month ``month - lead`` on."""
        return sum(
            v
            for (m, c), v in self.by_close_and_creation.items()
            if m == month and c >= month - lead
        )


def month_index(d: date | datetime) -> int:
    return d.year * 12 + d.month - 1


def month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def month_share(as_of: datetime) -> float:
    """The part of ``as_of``'s month still ahead of it (1.0 at 00:00 on the 1st)."""
    start, end = month_start(month_index(as_of)), month_start(month_index(as_of) + 1)
    begin = datetime(start.year, start.month, start.day, tzinfo=as_of.tzinfo)
    finish = datetime(end.year, end.month, end.day, tzinfo=as_of.tzinfo)
    return (finish - as_of) / (finish - begin)


def seasonal_forecast(history: WonHistory, current: int, k: int) -> float | None:
    """The won value of month ``current + k``'s counterpart in the latest complete quarter."""
    back = SEASON * math.ceil((k + 1) / SEASON)
    source = current + k - back
    if source < history.first_month or source >= current:
        return None
    return history.won(source)


def new_business_forecast(history: WonHistory, current: int, k: int) -> float:
    """The won value expected in month ``current + k`` from deals not created by month
    ``current``: the mean of what such deals brought in the past months (0 without any)."""
    past = [history.new_business(m, k) for m in range(history.first_month, current)]
    nb = forecast_new_business(past, 1) if past else None
    return nb.mean if nb else 0.0


@dataclass(frozen=True, slots=True)
class OpenDeals:
    """The open deals a learned forecast spreads over its months: ``values`` (n,), ``win`` and
    ``loss`` (n, >= months) their P(won / lost in month k), ``overdue`` (n,) bool."""

    values: np.ndarray
    win: np.ndarray
    loss: np.ndarray
    overdue: np.ndarray


@dataclass(frozen=True, slots=True)
class LearnedMonth:
    """A month of the learned forecast and its parts (before the combination)."""

    forecast: ForecastMonth
    model_point: float
    seasonal: float | None


def learned_months(
    *, as_of: datetime, deals: OpenDeals, history: WonHistory, errors: PastErrors, months: int
) -> list[LearnedMonth]:
    """The ``months`` months from ``as_of``'s for the open ``deals``."""
    values, win, overdue = deals.values, deals.win, deals.overdue
    current = month_index(as_of)
    share = month_share(as_of)
    weight = errors.model_weight()
    rel_sd = errors.relative_sd()
    closing = win[:, :months] + deals.loss[:, :months]
    likeliest = closing.argmax(axis=1) if len(values) else np.zeros(0, dtype=int)
    out = []
    for k in range(months):
        scale = share if k == 0 else 1.0
        p = win[:, k]
        seasonal = seasonal_forecast(history, current, k)
        parts = ForecastParts(
            open_pipeline=float((values * p)[~overdue].sum()),
            overdue=float((values * p)[overdue].sum()),
            new_business=new_business_forecast(history, current, k) * scale,
            seasonal=None if seasonal is None else seasonal * scale,
            model_weight=1.0 if seasonal is None else weight,
        )
        model_point = parts.open_pipeline + parts.overdue + parts.new_business
        point = model_point
        if parts.seasonal is not None:
            point = weight * model_point + (1 - weight) * parts.seasonal
        variance = float((values * values * p * (1 - p)).sum())
        if rel_sd is not None:
            sd = rel_sd * point
        else:
            sd = math.hypot(PRIOR_RELATIVE_SD * point, math.sqrt(variance))
        forecast = ForecastMonth(
            month=month_start(current + k),
            deal_count=int((likeliest == k).sum()),
            pipeline=float((values * closing[:, k]).sum()),
            weighted=point,
            p10=max(0.0, point - Z90 * sd),
            p50=point,
            p90=point + Z90 * sd,
            expected_wins=float(p.sum()),
            method="learned",
            parts=parts,
        )
        out.append(LearnedMonth(forecast, model_point, parts.seasonal))
    return out
