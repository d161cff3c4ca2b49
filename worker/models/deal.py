"""Pure: the learned deal model: when an open deal will be won or lost, and so its close
probability.

One classifier answers, for an open deal seen at a moment and a forecast month ``k``
(0 = the rest of the current month), which of three things happens in that month: the deal
is won, it is lost, or neither. Its inputs are :mod:`worker.models.deal_features`.

* Timing: ``win[k]`` = P(won in month k) is what the forecast puts in month ``k``.
* Close probability = sum_k win[k] / (sum_k win[k] + sum_k loss[k]) over the horizon: the
  chance the deal is won rather than lost, whenever it closes.

Training rows come from snapshots of the deals as they were on past days (never the final
state of a closed deal: that leaks the outcome), joined to what happened in each month after;
a row is used only when its month had ended before the training cut, so no outcome is
censored.

Shrink: a deal's close probability moves away from a typical deal's at the same moment (the
training median of every base feature, same calendar) only by ``shrink`` = Gini = 2 AUC - 1 of
won against lost on the latest month of snapshots, held out in time. Features that do not rank
deals only add noise: on the CRM export (AUC 0.5) this took the backtest's Brier from 0.242 to
0.235 and its calibration error from 0.077 to 0.045. An isotonic calibration on that month is
available (``calibrate=True``) but off: it lost (Brier 0.262, calibration error 0.137), because
the latest month's win rate is that of its place in the quarter, not of the months ahead.

The classifier is scikit-learn's histogram gradient boosting (multinomial); it won against a
logistic regression in the backtest (see README, "The deal model and the backtest").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from worker.models.deal_features import (
    BASE_FEATURES,
    FEATURES,
    SMOOTHING,
    ClosedDeal,
    History,
    matrix,
    window_of,
)
from worker.models.metrics import auc
from worker.models.training import boosted_trees

if TYPE_CHECKING:
    from sklearn.isotonic import IsotonicRegression

# scikit-learn (with scipy and pandas, ~200 MB) is imported where a model is fitted: a worker
# without a trained model never loads it (unpickling an artifact imports what it needs).

HORIZON_MONTHS = 6
NEITHER, WON, LOST = 0, 1, 2


@dataclass(frozen=True)
class Snapshot:
    """The open deals as they were at ``at``."""

    at: datetime
    deals: Sequence[Any]


@dataclass(frozen=True)
class TrainingSet:
    features: np.ndarray
    labels: np.ndarray
    taken_at: np.ndarray  # the snapshot instant of each row (epoch seconds)
    deal_ids: np.ndarray


@dataclass(frozen=True)
class DealPredictions:
    """Per deal: P(won in month k), P(lost in month k), and the close probability."""

    win: np.ndarray  # (n, months)
    loss: np.ndarray  # (n, months)
    close_probability: np.ndarray  # (n,)


def _label(outcome: ClosedDeal | None, start: datetime, end: datetime) -> int:
    if outcome is None or not (start <= outcome.closed_at < end):
        return NEITHER
    return WON if outcome.won else LOST


def training_set(
    snapshots: Sequence[Snapshot],
    outcomes: dict[str, ClosedDeal],
    history: History,
    cut: datetime,
    months: int = HORIZON_MONTHS,
) -> TrainingSet:
    """Rows for every snapshot deal and month whose window ended by ``cut``. ``outcomes``
    may hold later closes too: only windows before the cut are looked at."""
    feats, labels, taken, ids = [], [], [], []
    for snap in snapshots:
        if snap.at >= cut or not snap.deals:
            continue
        ks = [k for k in range(months) if window_of(snap.at, k)[1] <= cut]
        if not ks:
            continue
        rows, _ = matrix(snap.deals, snap.at, history, max(ks) + 1)
        rows = rows.reshape(len(snap.deals), max(ks) + 1, len(FEATURES))
        for i, deal in enumerate(snap.deals):
            outcome = outcomes.get(deal.deal_id)
            for k in ks:
                start, end = window_of(snap.at, k)
                feats.append(rows[i, k])
                labels.append(_label(outcome, start, end))
                taken.append(snap.at.timestamp())
                ids.append(deal.deal_id)
    width = len(FEATURES)
    return TrainingSet(
        np.array(feats, dtype=np.float64).reshape(-1, width),
        np.array(labels, dtype=np.int64),
        np.array(taken, dtype=np.float64),
        np.array(ids, dtype=object),
    )


ModelKind = Literal["boosting", "logistic"]


def _classifier(kind: ModelKind = "boosting", seed: int = 0) -> Any:
    """A fresh multinomial classifier: histogram gradient boosting, strongly regularised
    (shallow trees, large leaves: the data carries little signal and much noise), or a
    logistic regression over scaled features with the month of the quarter one-hot."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if kind == "boosting":
        return boosted_trees(seed, max_iter=100, max_depth=3, min_samples_leaf=200)
    moq = FEATURES.index("month_of_quarter")
    scaled = [i for i in range(len(FEATURES)) if i != moq]
    columns = ColumnTransformer(
        [
            ("quarter", OneHotEncoder(handle_unknown="ignore"), [moq]),
            ("scaled", StandardScaler(), scaled),
        ]
    )
    return make_pipeline(columns, LogisticRegression(C=0.1, max_iter=500))


def _proba(clf: Any, rows: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities in the order (neither, won, lost), zero for a class never seen
    (``known``: the classifier's ``predict_proba`` of ``rows``, when already computed)."""
    if known is not None:
        return _known_proba(clf, known)
    out = np.zeros((len(rows), 3))
    if len(rows):
        out[:, clf.classes_] = clf.predict_proba(rows)
    return out


def _known_proba(clf: Any, known: np.ndarray) -> np.ndarray:
    """The classifier's ``predict_proba`` output in the order (neither, won, lost)."""
    out = np.zeros((len(known), 3))
    if len(known):
        out[:, clf.classes_] = known
    return out


@dataclass
class DealModel:
    """A fitted deal model with the history its features were computed against."""

    classifier: Any
    history: History
    months: int = HORIZON_MONTHS
    calibrator: IsotonicRegression | None = None
    reference: np.ndarray = field(default_factory=lambda: np.zeros(len(BASE_FEATURES)))
    shrink: float = 1.0  # see _discrimination

    def predict(self, deals: Sequence[Any], now: datetime) -> DealPredictions:
        rows, _ = matrix(deals, now, self.history, self.months)
        return self._from_rows(rows, len(deals))

    def predict_each(self, deals: Sequence[Any], moments: Sequence[datetime]) -> DealPredictions:
        """:meth:`predict` with each deal seen at its own moment (its event's time), in one
        call of the classifier."""
        return self.predict_rows(self.rows_each(deals, moments), len(deals))

    def rows_each(self, deals: Sequence[Any], moments: Sequence[datetime]) -> np.ndarray:
        """The feature rows of each deal at its own moment, deal-major, ``self.months`` per
        deal (deals sharing a moment share one :func:`matrix` call)."""
        by_moment: dict[datetime, list[int]] = {}
        for i, at in enumerate(moments):
            by_moment.setdefault(at, []).append(i)
        rows = np.empty((len(deals), self.months, len(FEATURES)))
        for at, idx in by_moment.items():
            block, _ = matrix([deals[i] for i in idx], at, self.history, self.months)
            rows[idx] = block.reshape(len(idx), self.months, len(FEATURES))
        return rows.reshape(len(deals) * self.months, len(FEATURES))

    def predict_rows(
        self, rows: np.ndarray, n: int, class_proba: np.ndarray | None = None
    ) -> DealPredictions:
        """Predictions from feature rows already built (``n`` deals, ``self.months`` rows each);
        ``class_proba``: the classifier's ``predict_proba`` of ``rows`` when already known."""
        return self._from_rows(rows, n, class_proba)

    def _shrunk(self, raw: np.ndarray, horizon: np.ndarray) -> np.ndarray:
        """``raw`` moved toward a typical deal's close probability at the same moment, by
        ``1 - shrink``: features that did not rank won above lost on held-out data only add
        noise (on the CRM export, AUC 0.5: Brier 0.242 unshrunk, 0.235 shrunk)."""
        centre = _typical(self, horizon)
        return centre + self.shrink * (raw - centre)

    def predict_known(self, class_proba: np.ndarray, first: np.ndarray, n: int) -> DealPredictions:
        """:meth:`predict_rows` of ``n`` deals whose rows the classifier already scored
        (``class_proba``, its ``predict_proba``); ``first``: the first deal's rows."""
        return self._from_proba(_known_proba(self.classifier, class_proba), first, n)

    def _from_rows(
        self, rows: np.ndarray, n: int, class_proba: np.ndarray | None = None
    ) -> DealPredictions:
        return self._from_proba(_proba(self.classifier, rows, class_proba), rows[: self.months], n)

    def _from_proba(self, class_proba: np.ndarray, first: np.ndarray, n: int) -> DealPredictions:
        proba = class_proba.reshape(n, self.months, 3)
        win, loss = proba[:, :, WON], proba[:, :, LOST]
        raw = _close(win, loss, self.history.base_rate)
        if self.shrink < 1.0 and n:
            raw = self._shrunk(raw, first[:, len(BASE_FEATURES) :])
        if self.calibrator is not None and n:
            raw = self.calibrator.predict(raw)
        return DealPredictions(win, loss, raw)


def _typical(model: DealModel, horizon: np.ndarray) -> float:
    """The close probability of a typical deal (the training median of every base feature)
    at the moment of ``horizon`` (one deal's horizon feature rows)."""
    rows = np.hstack([np.tile(model.reference, (len(horizon), 1)), horizon])
    proba = _proba(model.classifier, rows)
    return float(_close(proba[None, :, WON], proba[None, :, LOST], model.history.base_rate)[0])


def _close(win: np.ndarray, loss: np.ndarray, base_rate: float) -> np.ndarray:
    w, lo = win.sum(axis=1), loss.sum(axis=1)
    total = w + lo
    return np.where(total > 1e-9, w / np.maximum(total, 1e-12), base_rate)


def fit_deal_model(
    data: TrainingSet,
    history: History,
    months: int = HORIZON_MONTHS,
    kind: ModelKind = "boosting",
    seed: int = 0,
    calibrate: bool = False,
) -> DealModel:
    """Fit the classifier on ``data``; with ``calibrate``, also calibrate the close
    probability on its last month of snapshots (see the module docstring)."""
    clf = _classifier(kind, seed).fit(data.features, data.labels)
    reference = np.median(data.features[:, : len(BASE_FEATURES)], axis=0)
    # months ahead never seen in training would be extrapolated: the horizon stops there
    seen = int(data.features[:, FEATURES.index("month_ahead")].max()) + 1
    model = DealModel(clf, history, min(months, seen), None, reference)
    model.shrink = _discrimination(data, kind, seed)
    if calibrate:
        model.calibrator = _calibrator(data, history, months, seed)
    return model


def _discrimination(data: TrainingSet, kind: ModelKind, seed: int) -> float:
    """Gini (2 AUC - 1, at least 0) of won against lost on the latest month of snapshots, by a
    classifier that never saw them: how far a deal's own features may move its close
    probability from a typical deal's at the same moment (1 without closes to measure on)."""
    last = data.taken_at.max() if len(data.taken_at) else 0.0
    held = data.taken_at > last - 31 * 86400.0
    closed = held & (data.labels != NEITHER)
    won = data.labels[closed] == WON
    if held.all() or not held.any() or won.all() or not won.any():
        return 1.0
    early = _classifier(kind, seed).fit(data.features[~held], data.labels[~held])
    proba = _proba(early, data.features[closed])
    ratio = proba[:, WON] / np.maximum(proba[:, WON] + proba[:, LOST], 1e-12)
    measured = auc(ratio, won.astype(float))
    return 1.0 if measured is None else max(0.0, 2.0 * measured - 1.0)


def _calibrator(
    data: TrainingSet, history: History, months: int, seed: int
) -> IsotonicRegression | None:
    """Isotonic map of the close probability, fitted on the latest month of snapshots with a
    classifier that never saw them; ``None`` when there are too few closes to learn from."""
    last = data.taken_at.max() if len(data.taken_at) else 0.0
    held = data.taken_at > last - 31 * 86400.0
    if held.all() or not held.any():
        return None
    early = _classifier("boosting", seed).fit(data.features[~held], data.labels[~held])
    closed = held & (data.labels != NEITHER)
    if closed.sum() < 50:
        return None
    # each held-out deal's close probability as seen at its snapshot: its rows' months summed
    probs = _proba(early, data.features[closed])
    won = (data.labels[closed] == WON).astype(float)
    raw = probs[:, WON] / np.maximum(probs[:, WON] + probs[:, LOST], 1e-12)
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, won)


def enough_outcomes(data: TrainingSet, min_won: int, min_lost: int) -> bool:
    """Whether ``data`` holds at least ``min_won`` deals won and ``min_lost`` lost (distinct
    deals: one deal appears in many rows)."""
    won = len(set(data.deal_ids[data.labels == WON]))
    lost = len(set(data.deal_ids[data.labels == LOST]))
    return won >= min_won and lost >= min_lost


def stage_win_rates(
    snapshots: Sequence[Snapshot], outcomes: dict[str, ClosedDeal], cut: datetime, base: float
) -> dict[str, float]:
    """Per open stage, the smoothed share won of the deals seen in it that closed before
    ``cut``: the framework's stage base rates, re-estimated from whatever outcomes exist."""
    won: dict[str, int] = {}
    seen: dict[str, int] = {}
    for snap in snapshots:
        if snap.at >= cut:
            continue
        for deal in snap.deals:
            outcome = outcomes.get(deal.deal_id)
            if outcome is None or outcome.closed_at >= cut:
                continue
            stage = str(deal.stage)
            seen[stage] = seen.get(stage, 0) + 1
            won[stage] = won.get(stage, 0) + outcome.won
    return {s: (won[s] + SMOOTHING * base) / (n + SMOOTHING) for s, n in seen.items()}
