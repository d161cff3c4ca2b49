"""Pure: the learned churn model: training on past outcomes, calibrated scores with reasons.

Training rows are accounts as they were just before their outcome (``account.churned`` = 1,
``account.renewed`` = 0), with the outcome's time (``worker.domain.account.AccountOutcome``).
They are ordered by that time and cut, oldest first, into a *fit* fold (60 %), a *calibration*
fold (20 %) and a *test* fold (the newest 20 %), so every figure is measured on outcomes later
than anything the model or its calibration saw:

1. Candidates are fitted on the fit fold: gradient-boosted trees
   (``HistGradientBoostingClassifier``, fixed, modest settings) and a logistic regression
   (median imputation with missing-value indicators, standardised).
2. Each is calibrated on the calibration fold, isotonic or Platt (sigmoid). The pair kept is
   the one with the lowest log loss cross-fitted on that fold (calibrate on its older half,
   score its newer half, and the reverse), so the choice never looks at the test fold.
3. The test fold gives the figures (AUC, Brier, log loss, calibration error, with the base
   rate's Brier), for the kept model, for every other candidate (what lost), and for a plain
   logistic regression (same features, fitted on fit + calibration folds, not calibrated).

The stored artifact is exactly the model those figures describe (not refitted afterwards).

With fewer than ``min_churned`` churned or ``min_renewed`` renewed outcomes (default 200 each,
as Salesforce Einstein asks for deals) there is no model (:class:`NotEnoughData`) and the
framework's heuristic (``worker.engine.churn.score_churn``) stays in charge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from worker.engine._common import round_half_up
from worker.models.churn_explain import (
    Explanation,
    Profile,
    contributions,
    tree_contributions,
)
from worker.models.churn_features import FeatureSpec, RawRow
from worker.models.openmp import one_openmp_thread
from worker.models.training import NotEnoughOutcomes, TrainingSummary, boosted_trees
from worker.models.tree_occlusion import Forest, forest_of

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# scikit-learn (with scipy and pandas, ~200 MB) is imported where a model is fitted or scored:
# a worker without a trained model never loads it (unpickling an artifact imports it too).

__all__ = [
    "ChurnModel",
    "LoadedChurnModel",
    "ModelChurnScore",
    "NotEnoughData",
    "TrainParams",
    "Trained",
    "TrainingRow",
    "score_rows",
    "train",
]

KIND = "churn"
Family = Literal["boosted_trees", "logistic"]
Method = Literal["isotonic", "sigmoid"]
_EPS = 1e-6


class TrainParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_churned: int = Field(200, ge=1)
    min_renewed: int = Field(200, ge=1)
    fit_share: float = Field(0.6, gt=0, lt=1)
    calibration_share: float = Field(0.2, gt=0, lt=1)
    families: tuple[Family, ...] = ("boosted_trees", "logistic")
    methods: tuple[Method, ...] = ("isotonic", "sigmoid")
    seed: int = 0


@dataclass(frozen=True, slots=True)
class TrainingRow:
    features: RawRow
    churned: bool
    at: datetime  # the outcome's time: the order held out on


def _base_estimator(family: Family, seed: int) -> Any:
    if family == "boosted_trees":
        return boosted_trees(
            seed, max_iter=200, max_leaf_nodes=15, min_samples_leaf=40, early_stopping=False
        )
    return _logistic()


def _logistic() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


_MAX_GROUPS = 62  # the shortcut's path masks are 64-bit integers, a bit per feature
# Fewer rows: one stacked prediction costs less than running the trees one by one (CPU per
# account on the bank sample's model: 8.0 against 3.4 ms alone, 186 against 175 us at 256,
# 148 against 184 us at 2,000)
SHORTCUT_ROWS = 256


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Maps a model's probability to a calibrated one (isotonic, or Platt on its logit)."""

    method: Method
    fitted: Any

    @classmethod
    def fit(cls, method: Method, p: np.ndarray, y: np.ndarray) -> Calibrator:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression

        if method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            return cls(method, iso.fit(p, y))
        platt = LogisticRegression(C=1e6, max_iter=1000)
        return cls(method, platt.fit(_logit(p).reshape(-1, 1), y))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.asarray(self.fitted.predict(p), dtype=np.float64)
        return self.fitted.predict_proba(_logit(p).reshape(-1, 1))[:, 1]


@dataclass(frozen=True, slots=True)
class ChurnModel:
    """A fitted, calibrated churn model with what its explanations need (the artifact)."""

    spec: FeatureSpec
    family: Family
    estimator: Any
    calibrator: Calibrator
    profile: Profile

    def raw_probability(self, x: np.ndarray) -> np.ndarray:
        # One OpenMP thread: per-event batches are tiny, and on a busy 2-core machine the
        # thread pool's start-up costs more than the prediction (15 ms against 4 ms per
        # account measured; a page of 2,000 rows is faster too, 20 ms against 45 ms).
        with one_openmp_thread():
            return self.estimator.predict_proba(x)[:, 1]

    def forest(self) -> Forest | None:
        """The trees' occlusion shortcut (None: not boosted trees, or too many features for
        its bit masks)."""
        groups = self.spec.groups()
        if self.family != "boosted_trees" or len(groups) > _MAX_GROUPS:
            return None
        return forest_of(self.estimator, [list(range(g.start, g.stop)) for g in groups])

    def probability(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator(self.raw_probability(x)), 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class LoadedChurnModel:
    """The champion as the scoring path holds it: its registry version and the model."""

    version: str
    model: ChurnModel


@dataclass(frozen=True, slots=True)
class ModelChurnScore:
    probability: float  # calibrated, 0..1
    score: int  # 0-100
    explanation: Explanation


def score_rows(model: ChurnModel, rows: Sequence[RawRow], top: int = 3) -> list[ModelChurnScore]:
    """Calibrated churn probabilities of ``rows`` with their top factors in words (one
    batched prediction for the scores and the explanations)."""
    if not rows:
        return []
    x = model.spec.matrix(rows)
    forest = model.forest() if len(rows) >= SHORTCUT_ROWS else None
    if forest is not None:
        with one_openmp_thread():
            raw, effect = tree_contributions(forest, model.spec, x, model.profile.reference)
    else:
        raw, effect = contributions(model.raw_probability, model.spec, x, model.profile.reference)
    if model.family != "boosted_trees":
        # trees score each row on its own, so x's rows among others are x's; a linear model's
        # matrix product may round otherwise in a larger stack: x alone, as always
        raw = model.raw_probability(x)
    p = np.clip(model.calibrator(raw), 0.0, 1.0)
    return [
        ModelChurnScore(
            probability=float(p[i]),
            score=round_half_up(100.0 * float(p[i])),
            explanation=model.profile.explain(model.spec, rows[i], effect[i], top),
        )
        for i in range(len(rows))
    ]


# -- training ------------------------------------------------------------------------------


class NotEnoughData(NotEnoughOutcomes):
    """Too few outcomes to learn from: the heuristic stays in charge."""

    def __init__(self, churned: int, renewed: int, params: TrainParams) -> None:
        self.churned, self.renewed = churned, renewed
        needs = {"churned": (churned, params.min_churned), "renewed": (renewed, params.min_renewed)}
        super().__init__("churn", "outcomes", needs)


@dataclass(frozen=True, slots=True)
class Fold:
    rows: list[TrainingRow]
    x: np.ndarray
    y: np.ndarray

    def describe(self) -> dict[str, Any]:
        return {
            "rows": len(self.rows),
            "churned": int(self.y.sum()),
            "from": self.rows[0].at.isoformat(),
            "to": self.rows[-1].at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Trained(TrainingSummary):
    model: ChurnModel
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)


def _folds(rows: Sequence[TrainingRow], params: TrainParams) -> tuple[FeatureSpec, list[Fold]]:
    ordered = sorted(rows, key=lambda r: r.at)  # stable: equal times keep the given order
    n = len(ordered)
    cut1 = int(n * params.fit_share)
    cut2 = int(n * (params.fit_share + params.calibration_share))
    parts = [ordered[:cut1], ordered[cut1:cut2], ordered[cut2:]]
    spec = FeatureSpec.learn([r.features for r in parts[0]])
    folds = [
        Fold(
            part,
            spec.matrix([r.features for r in part]),
            np.array([r.churned for r in part], dtype=np.float64),
        )
        for part in parts
    ]
    for name, fold in zip(("fit", "calibration", "test"), folds, strict=True):
        if len(set(fold.y.tolist())) < 2:
            raise ValueError(f"the {name} fold has only one outcome class: too little data")
    return spec, folds


def _cross_fitted_log_loss(method: Method, p: np.ndarray, y: np.ndarray) -> float:
    """Log loss of calibrating on one half (in time) and scoring the other, both ways."""
    half = len(p) // 2
    losses = []
    for a, b in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
        if len(set(y[a].tolist())) < 2:
            return math.inf
        q = np.clip(Calibrator.fit(method, p[a], y[a])(p[b]), _EPS, 1 - _EPS)
        losses.append(float(-np.mean(y[b] * np.log(q) + (1 - y[b]) * np.log(1 - q))))
    return float(np.mean(losses))


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: over ``bins`` equal-width bins of p, the case-weighted
    mean of |mean p - observed rate|."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    gaps = [
        (which == b).sum() * abs(p[which == b].mean() - y[which == b].mean())
        for b in range(bins)
        if (which == b).any()
    ]
    return float(sum(gaps) / len(p))


def figures(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """How good probabilities ``p`` are against outcomes ``y`` (0/1, both present)."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    rate = float(y.mean())
    return {
        "cases": len(y),
        "positive_rate": rate,
        "mean_prediction": float(p.mean()),
        "auc": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "base_rate_brier": float(brier_score_loss(y, np.full(len(y), rate))),
        "log_loss": float(log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1])),
        "calibration_error": calibration_error(p, y),
    }


def train(
    rows: Sequence[TrainingRow],
    params: TrainParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> Trained:
    """A calibrated churn model from past outcomes (module docstring), or
    :class:`NotEnoughData`."""
    params = params or TrainParams()
    say = progress or (lambda _: None)
    churned = sum(r.churned for r in rows)
    renewed = len(rows) - churned
    if churned < params.min_churned or renewed < params.min_renewed:
        raise NotEnoughData(churned, renewed, params)
    spec, (fit, cal, test) = _folds(rows, params)
    profile = Profile.learn(spec, [r.features for r in fit.rows], fit.y)

    candidates: dict[str, dict[str, Any]] = {}
    best: tuple[float, ChurnModel] | None = None
    for family in params.families:
        say(f"fitting {family} on {len(fit.rows)} outcomes")
        estimator = _base_estimator(family, params.seed).fit(fit.x, fit.y)
        p_cal = estimator.predict_proba(cal.x)[:, 1]
        for method in params.methods:
            selection = _cross_fitted_log_loss(method, p_cal, cal.y)
            calibrator = Calibrator.fit(method, p_cal, cal.y)
            model = ChurnModel(spec, family, estimator, calibrator, profile)
            name = f"{family}+{method}"
            candidates[name] = {
                "selection_log_loss": selection,
                "test": figures(model.probability(test.x), test.y),
            }
            if best is None or selection < best[0]:
                best = (selection, model)
    assert best is not None
    chosen = best[1]

    baseline = _logistic().fit(np.vstack([fit.x, cal.x]), np.concatenate([fit.y, cal.y]))
    metrics = {
        "test": figures(chosen.probability(test.x), test.y),
        "baseline_logistic": figures(baseline.predict_proba(test.x)[:, 1], test.y),
        "candidates": candidates,
        "split": {
            "order": "outcome time (account.churned / account.renewed), oldest first",
            "fit": fit.describe(),
            "calibration": cal.describe(),
            "test": test.describe(),
        },
    }
    everything = [*fit.rows, *cal.rows, *test.rows]
    return Trained(
        model=chosen,
        samples={"rows": len(rows), "positive": churned, "negative": renewed},
        metrics=metrics,
        params={
            "family": chosen.family,
            "calibration": chosen.calibrator.method,
            "features": spec.features,
            "columns": len(spec.columns),
            "min_churned": params.min_churned,
            "min_renewed": params.min_renewed,
            "fit_share": params.fit_share,
            "calibration_share": params.calibration_share,
            "seed": params.seed,
        },
        train_from=everything[0].at,
        train_to=everything[-1].at,
        candidates=candidates,
    )
