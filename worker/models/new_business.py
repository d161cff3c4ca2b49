"""Pure: the business not yet in the pipeline, forecast from its own history.

A forecast made at ``as_of`` sees only the deals open then. Won value also comes from deals
created later and won within the horizon ("new business"). Its history is measured from the
past (:func:`new_business_history`): for each past month m and lead ``k``, the value won in m by
deals created after the start of month m - k. Each lead's series is forecast with
statsforecast. The candidates are the last month (``Naive``), the same month of the last
quarter (``SeasonalNaive``, season length 3), the mean of that month over the last two quarters
(``SeasonalWindowAverage``) and ``AutoETS``, each once the series is long enough; the one whose
one-month-ahead forecasts inside the history erred least (root mean square of the relative
error) is used, and that error is its spread (at least ``MIN_RELATIVE_SD``). Nothing but the
history before the cut is looked at.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SEASON = 3  # months: sales follow the quarter
MIN_RELATIVE_SD = 0.10


@dataclass(frozen=True, slots=True)
class NewBusiness:
    """The forecast of one lead: expected value and its standard deviation."""

    mean: float
    sd: float
    method: str


def _candidates(y: np.ndarray) -> list[tuple[str, Any]]:
    from statsforecast.models import AutoETS, Naive, SeasonalNaive, SeasonalWindowAverage

    models: list[tuple[str, Any]] = [("naive", Naive())]
    if len(y) >= SEASON:
        models.append(("seasonal_naive", SeasonalNaive(season_length=SEASON)))
    if len(y) >= 2 * SEASON:
        models.append(
            ("seasonal_window_average", SeasonalWindowAverage(season_length=SEASON, window_size=2))
        )
    if len(y) >= 2 * SEASON + 1:
        models.append(("auto_ets", AutoETS(season_length=SEASON)))
    return models


def _forecast(model: Any, y: np.ndarray, h: int) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return max(0.0, float(model.forecast(y=y, h=h)["mean"][h - 1]))
    except (NotImplementedError, ValueError, np.linalg.LinAlgError):
        return None


def _one_step_errors(name: str, y: np.ndarray) -> list[float]:
    """Relative errors of ``name`` forecasting each month of ``y`` from the months before."""
    errors = []
    for end in range(1, len(y)):
        model = dict(_candidates(y[:end])).get(name)
        guess = None if model is None else _forecast(model, y[:end], 1)
        if guess is not None and y[end] > 0:
            errors.append((guess - y[end]) / y[end])
    return errors


def _rms(errors: Sequence[float]) -> float:
    return float(np.sqrt(np.mean(np.square(errors)))) if errors else float("inf")


def forecast_new_business(history: Sequence[float], h: int) -> NewBusiness:
    """Forecast the month ``h`` steps after the last of ``history`` (h >= 1) with the
    candidate that forecast the history best one month ahead (fewer than two scored months:
    the simplest that applies)."""
    y = np.asarray(history, dtype=np.float64)
    if len(y) == 0:
        return NewBusiness(0.0, 0.0, "none")
    scored = []
    for name, model in _candidates(y):
        errors = _one_step_errors(name, y)
        point = _forecast(model, y, h)
        if point is not None:
            scored.append((_rms(errors) if len(errors) >= 2 else float("inf"), name, point))
    spread, name, mean = min(scored, key=lambda s: s[0]) if scored else (0.0, "mean", y.mean())
    if spread == float("inf"):  # nothing scored yet: the most seasonal candidate that applies
        spread, name, mean = scored[-1]
        spread = 0.0
    return NewBusiness(mean, max(MIN_RELATIVE_SD, spread) * mean, name)
