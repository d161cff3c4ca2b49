"""How good a probability or a forecast is. Pure: numpy only, no I/O.

* Brier score: mean (p - y)^2; the *base-rate* Brier answers the observed rate for every case.
* Log loss: mean -[y log p + (1 - y) log(1 - p)], p clipped to [1e-6, 1 - 1e-6].
* Calibration error (expected calibration error, ECE): cases in ``bins`` equal-width bins of p;
  the case-weighted mean of |mean p - mean y| over the bins.
* AUC: the probability that a random positive scores above a random negative (ties count 1/2),
  from the rank-sum (Mann-Whitney) formula; ``None`` without both classes.
* MAPE and bias of forecasts: mean |f - a| / a and mean (f - a) / a, over cases with a > 0.
* Interval coverage: the share of cases with lo <= a <= hi.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

_EPS = 1e-6


class ProbabilityScores(BaseModel):
    """The figures of a set of probabilities against outcomes."""

    model_config = ConfigDict(frozen=True)

    cases: int
    positive_rate: float
    mean_prediction: float
    brier: float
    base_rate_brier: float
    log_loss: float
    calibration_error: float
    auc: float | None


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return total / len(p)


def auc(p: np.ndarray, y: np.ndarray) -> float | None:
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def score_probabilities(p: Sequence[float], y: Sequence[int | bool]) -> ProbabilityScores:
    """All the figures of probabilities ``p`` (0..1) against outcomes ``y`` (0/1)."""
    pa = np.asarray(p, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if len(pa) != len(ya) or len(pa) == 0:
        raise ValueError("p and y must be non-empty and of the same length")
    rate = float(ya.mean())
    return ProbabilityScores(
        cases=len(pa),
        positive_rate=rate,
        mean_prediction=float(pa.mean()),
        brier=brier(pa, ya),
        base_rate_brier=brier(np.full(len(ya), rate), ya),
        log_loss=log_loss(pa, ya),
        calibration_error=calibration_error(pa, ya),
        auc=auc(pa, ya),
    )


def mape(forecast: Sequence[float], actual: Sequence[float]) -> float | None:
    f, a = np.asarray(forecast, float), np.asarray(actual, float)
    sel = a > 0
    return float(np.mean(np.abs(f[sel] - a[sel]) / a[sel])) if sel.any() else None


def bias(forecast: Sequence[float], actual: Sequence[float]) -> float | None:
    f, a = np.asarray(forecast, float), np.asarray(actual, float)
    sel = a > 0
    return float(np.mean((f[sel] - a[sel]) / a[sel])) if sel.any() else None


def coverage(lo: Sequence[float], hi: Sequence[float], actual: Sequence[float]) -> float | None:
    a = np.asarray(actual, float)
    if len(a) == 0:
        return None
    return float(np.mean((np.asarray(lo, float) <= a) & (a <= np.asarray(hi, float))))
