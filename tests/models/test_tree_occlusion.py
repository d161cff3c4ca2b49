"""The trees' shortcut for occlusions gives the classifier's own probabilities, to the last
bit: the explanations and close probabilities of a tick are those of predicting every
occluded row (``worker.models.tree_occlusion``)."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from tests.deal_history import CUT, history_events, month_start, train
from worker.backtest.replay import Replay
from worker.models import deal_explain
from worker.models.deal import DealModel
from worker.models.deal_explain import FACTOR_GROUPS, effects, explain
from worker.models.deal_features import BASE_FEATURES, FEATURES, History
from worker.models.deal_scoring import DealModels, LoadedDealModel, score_open
from worker.models.tree_occlusion import Occlusion, forest_of, occluded_proba

GROUPS = [deal_explain._COLUMNS[g] for g in FACTOR_GROUPS]


def _busy_model(seed: int = 3) -> DealModel:
    """A classifier whose trees split on many groups (days, close date, amount, lead score,
    qualification, win rates, the horizon), with ties and repeated values in the rows."""
    rng = np.random.default_rng(seed)
    n = 6000
    x = rng.integers(0, 6, size=(n, len(FEATURES))).astype(float)
    x[:, 4:10] = rng.normal(30, 20, size=(n, 6)).round(1)
    signal = x[:, 4] / 20 - x[:, 7] / 30 + x[:, 12] + x[:, 18] - x[:, 25] + rng.normal(0, 1, n)
    y = np.where(signal > 2.5, 1, np.where(signal < 0.5, 2, 0))
    clf = HistGradientBoostingClassifier(max_iter=40, max_depth=3, random_state=seed).fit(x, y)
    reference = np.median(x[:, : len(BASE_FEATURES)], axis=0)
    return DealModel(clf, History(base_rate=0.4), months=3, reference=reference, shrink=0.7)


def _rows(model: DealModel, n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 6, size=(n, len(FEATURES))).astype(float)
    base[:, 4:10] = rng.normal(30, 20, size=(n, 6)).round(1)
    base[: n // 4, : len(BASE_FEATURES)] = model.reference  # typical deals: nothing moves
    rows = np.repeat(base, model.months, axis=0)
    rows[:, -3] = np.tile(np.arange(model.months), n)  # month ahead
    return rows


def _slow(monkeypatch: pytest.MonkeyPatch, model: DealModel, rows: np.ndarray, n: int):
    with monkeypatch.context() as patched:
        patched.setattr(deal_explain, "forest_of", lambda *a: None)
        return effects(model, rows, n, model.reference)


def test_the_shortcut_gives_predict_proba_of_the_stacked_rows():
    model = _busy_model()
    n, months = 400, model.months
    rows = _rows(model, n)
    per_deal = rows.reshape(n, months, -1)
    blocks, stacked = [], [per_deal]
    for g, cols in enumerate(GROUPS):
        moved = np.flatnonzero((per_deal[:, 0, cols] != model.reference[cols]).any(axis=1))
        if len(moved):
            occluded = per_deal[moved].copy()
            occluded[:, :, cols] = model.reference[cols]
            stacked.append(occluded)
            blocks.append(Occlusion(cols, moved, 1 << g))
    expected = model.classifier.predict_proba(np.concatenate(stacked).reshape(-1, rows.shape[1]))
    forest = forest_of(model.classifier, GROUPS)
    assert forest is not None
    got = occluded_proba(forest, rows, months, model.reference, blocks)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    # most trees are run again for some group, yet not every tree for every group
    tested = [bin(t.groups).count("1") for t in forest.trees]
    assert 0 < sum(tested) < len(forest.trees) * len(GROUPS)


def test_effects_and_explanations_equal_those_of_every_row(monkeypatch):
    model = _busy_model()
    n = 300
    rows = _rows(model, n, seed=8)
    fast = effects(model, rows, n, model.reference)
    slow = _slow(monkeypatch, model, rows, n)
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    assert np.count_nonzero(fast[1]) > n  # effects there are, of many groups
    assert (fast[1][: n // 4] == 0).all()  # a typical deal: no group moves


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(history_events())


@pytest.fixture(scope="module")
def model(replay: Replay) -> DealModel:
    return train(replay).artifact


def _deals(replay: Replay) -> tuple[list, list]:
    deals = [d for at in (month_start(9), CUT) for d in replay.open_at(at)]
    moments = [month_start(9)] * len(replay.open_at(month_start(9)))
    return deals, moments + [CUT] * (len(deals) - len(moments))


def test_the_deal_models_explanations_are_unchanged(monkeypatch, replay, model):
    deals, moments = _deals(replay)
    rows = model.rows_each(deals, moments)
    fast = effects(model, rows, len(deals), model.profile.reference)
    slow = _slow(monkeypatch, model, rows, len(deals))
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    said = explain(model, model.profile, deals, rows, fast[1])
    assert said == explain(model, model.profile, deals, rows, slow[1])
    assert any(e.raises or e.lowers for e in said)


def test_other_classifiers_predict_every_row():
    x = np.random.default_rng(1).normal(size=(60, 4))
    y = np.arange(60) % 3
    assert forest_of(LogisticRegression().fit(x, y), GROUPS) is None
    # trees scikit-learn would keep otherwise: the shortcut steps aside
    moved = SimpleNamespace(_predictors=[[object()]], _baseline_prediction=0.0, _loss=None)
    assert forest_of(moved, GROUPS) is None


def test_a_ticks_page_scores_each_deal_as_alone(replay, model):
    """A page of a tick (one call for all its deals) gives every deal the close probability
    and the factors it gets scored on its own."""
    deals = replay.open_at(CUT)
    models = DealModels(LoadedDealModel("champion", model))
    page = score_open(models, deals, [CUT] * len(deals))
    alone = [score_open(models, [d], [CUT])[0] for d in deals]
    assert page == alone
    assert len({s.probability for s in page}) > 1
